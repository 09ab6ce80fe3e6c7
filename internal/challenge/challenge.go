// Package challenge parses the WWW-Authenticate challenges of resource
// servers (RFC 7235 §4.1 syntax; the Bearer parameters of RFC 6750 §3, the
// DPoP ones of RFC 9449 §7.1, and resource_metadata of RFC 9728 §5.1).
// Every value is attacker-controlled text: escape it before display.
package challenge

import (
	"net/http"
	"strings"
)

// Params is an RFC 6750 §3 Bearer challenge from a resource
// server's WWW-Authenticate header. Every field is attacker-controlled text:
// escape it before display. It is a plain value, safe to share read-only.
type Params struct {
	Realm            string   // realm, "" if absent
	Error            string   // error code: invalid_request, invalid_token, insufficient_scope, or another
	ErrorDescription string   // error_description, "" if absent
	ErrorURI         string   // error_uri, "" if absent
	Scope            []string // scope, split on spaces; nil if absent
}

// Limits that keep the parser cheap on hostile input.
const (
	maxChallengeHeader = 8 << 10 // bytes of one header value that are looked at
	maxChallenges      = 16      // challenges kept over all header values
	maxChallengeParams = 16      // parameters kept per challenge
)

// ForToken is the challenge that answers a request made with tok's
// scheme: for a DPoP-bound token the DPoP challenge (RFC 9449 §7.1, the
// same parameters as Bearer's), else the Bearer one; a DPoP token falls
// back to a Bearer challenge when the server sends no DPoP one.
func ForToken(h http.Header, dpop bool) (Params, bool) {
	if dpop {
		if c, ok := Find(h, "DPoP"); ok {
			return c, true
		}
	}
	return Find(h, "Bearer")
}

// Find returns the first challenge of scheme (case-insensitive) in the
// WWW-Authenticate header fields of h (RFC 7235 §4.1 syntax: several
// fields, several comma-separated challenges per field, token or
// quoted-string parameter values, case-insensitive scheme and parameter
// names). It reports false when there is none. It never panics, whatever
// the input, and reads at most 8 KiB of each field. Safe for concurrent use.
func Find(h http.Header, scheme string) (Params, bool) {
	for _, c := range parseAll(h.Values("Www-Authenticate")) {
		if !strings.EqualFold(c.scheme, scheme) {
			continue
		}
		b := Params{
			Realm:            c.param("realm"),
			Error:            c.param("error"),
			ErrorDescription: c.param("error_description"),
			ErrorURI:         c.param("error_uri"),
		}
		if s, ok := c.lookup("scope"); ok {
			b.Scope = strings.Fields(s)
		}
		return b, true
	}
	return Params{}, false
}

// challenge is one parsed auth challenge. Parameter names are lower case;
// when a name repeats, the first value wins.
type challenge struct {
	scheme  string
	token68 string
	params  [][2]string
}

func (c *challenge) lookup(name string) (string, bool) {
	for _, p := range c.params {
		if p[0] == name {
			return p[1], true
		}
	}
	return "", false
}

func (c *challenge) param(name string) string {
	v, _ := c.lookup(name)
	return v
}

// parseAll parses WWW-Authenticate field values. Malformed parts are
// skipped up to the next comma; well-formed challenges around them are kept.
func parseAll(values []string) []challenge {
	var out []challenge
	for _, v := range values {
		if len(v) > maxChallengeHeader {
			v = v[:maxChallengeHeader]
		}
		p := chParser{s: v}
		out = p.parse(out)
		if len(out) >= maxChallenges {
			return out[:maxChallenges]
		}
	}
	return out
}

type chParser struct {
	s string
	i int
}

func (p *chParser) parse(out []challenge) []challenge {
	for len(out) < maxChallenges {
		p.skipListSeparators()
		if p.i >= len(p.s) {
			return out
		}
		scheme := p.token()
		if scheme == "" {
			p.skipItem() // garbage: drop it up to the next comma
			continue
		}
		c := challenge{scheme: scheme}
		if p.i < len(p.s) && p.s[p.i] != ' ' && p.s[p.i] != '\t' && p.s[p.i] != ',' {
			// Something glued to the scheme ("Bearer=x", "Bearer\"x"): not a challenge.
			p.skipItem()
			continue
		}
		p.skipOWS()
		if t, ok := p.tryToken68(); ok {
			c.token68 = t
			out = append(out, c)
			continue
		}
		p.parseParams(&c)
		out = append(out, c)
	}
	return out
}

// parseParams reads auth-params after a scheme until the next challenge
// (a token not followed by "=") or the end.
func (p *chParser) parseParams(c *challenge) {
	for {
		p.skipListSeparators()
		if p.i >= len(p.s) {
			return
		}
		start := p.i
		name := p.token()
		if name == "" {
			p.skipItem()
			continue
		}
		p.skipOWS()
		if p.i >= len(p.s) || p.s[p.i] != '=' {
			// A new challenge starts here.
			p.i = start
			return
		}
		p.i++ // '='
		p.skipOWS()
		var val string
		var ok bool
		if p.i < len(p.s) && p.s[p.i] == '"' {
			val, ok = p.quoted()
		} else {
			val = p.token()
			ok = val != ""
		}
		if !ok {
			p.skipItem()
			continue
		}
		p.skipOWS()
		if p.i < len(p.s) && p.s[p.i] != ',' {
			// Trailing garbage after a value: drop the rest of this item.
			p.skipItem()
			continue
		}
		name = strings.ToLower(name)
		if _, dup := c.lookup(name); !dup && len(c.params) < maxChallengeParams {
			c.params = append(c.params, [2]string{name, val})
		}
	}
}

// tryToken68 reads a token68 (RFC 7235 §2.1) if that is what follows, i.e.
// token68 characters then optional "=" padding, then the end or a comma.
func (p *chParser) tryToken68() (string, bool) {
	j := p.i
	for j < len(p.s) && isToken68Char(p.s[j]) {
		j++
	}
	if j == p.i {
		return "", false
	}
	k := j
	for k < len(p.s) && p.s[k] == '=' {
		k++
	}
	e := k
	for e < len(p.s) && (p.s[e] == ' ' || p.s[e] == '\t') {
		e++
	}
	if e < len(p.s) && p.s[e] != ',' {
		return "", false
	}
	// "realm=x" is not token68 (the check above fails on the "x"); a lone
	// "name=" is ambiguous in RFC 7235 and read as token68.
	t := p.s[p.i:k]
	p.i = e
	return t, true
}

func (p *chParser) token() string {
	j := p.i
	for j < len(p.s) && isTokenChar(p.s[j]) {
		j++
	}
	t := p.s[p.i:j]
	p.i = j
	return t
}

// quoted reads a quoted-string, undoing quoted-pairs. It fails on a missing
// closing quote or a control character.
func (p *chParser) quoted() (string, bool) {
	p.i++ // opening quote
	var b strings.Builder
	simple := true
	start := p.i
	for p.i < len(p.s) {
		ch := p.s[p.i]
		switch {
		case ch == '"':
			p.i++
			if simple {
				return p.s[start : p.i-1], true
			}
			return b.String(), true
		case ch == '\\':
			if p.i+1 >= len(p.s) || !isQuotedTextChar(p.s[p.i+1]) {
				p.i = len(p.s)
				return "", false
			}
			if simple {
				simple = false
				b.WriteString(p.s[start:p.i])
			}
			b.WriteByte(p.s[p.i+1])
			p.i += 2
		case isQuotedTextChar(ch):
			if !simple {
				b.WriteByte(ch)
			}
			p.i++
		default:
			p.i = len(p.s)
			return "", false
		}
	}
	return "", false
}

func (p *chParser) skipOWS() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *chParser) skipListSeparators() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == ',') {
		p.i++
	}
}

// skipItem skips to the next comma that is not inside a quoted string.
func (p *chParser) skipItem() {
	inQuote := false
	for p.i < len(p.s) {
		ch := p.s[p.i]
		switch {
		case inQuote && ch == '\\':
			p.i++
		case ch == '"':
			inQuote = !inQuote
		case !inQuote && ch == ',':
			return
		}
		p.i++
	}
}

// isTokenChar: RFC 9110 tchar.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken68Char(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
}

// isQuotedTextChar: qdtext and the characters a quoted-pair may carry
// (HTAB, SP, VCHAR, obs-text), except that '"' and '\\' are handled by the caller.
func isQuotedTextChar(c byte) bool {
	return c == '\t' || (c >= 0x20 && c != 0x7f)
}

// ResourceHints returns the first resource_metadata URL and the first
// scope list of the Bearer or DPoP challenges of h (RFC 9728 §5.1), ""
// and nil when there are none.
func ResourceHints(h http.Header) (metaURL string, scopes []string) {
	for _, c := range parseAll(h.Values("Www-Authenticate")) {
		if !strings.EqualFold(c.scheme, "Bearer") && !strings.EqualFold(c.scheme, "DPoP") {
			continue
		}
		if m, ok := c.lookup("resource_metadata"); ok && metaURL == "" {
			metaURL = m
		}
		if s, ok := c.lookup("scope"); ok && scopes == nil {
			scopes = strings.Fields(s)
		}
	}
	return metaURL, scopes
}

package callback

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// Limits on a callback request. A real authorization response is a handful
// of short parameters; anything beyond these is refused before any lookup.
const (
	maxRawParams  = 16 << 10 // raw query or form body, bytes
	maxParams     = 16       // distinct parameter names
	maxParamValue = 4096     // bytes per value (codes, error_description...)
	maxReturnTo   = 1024     // bytes of a return-to path; it travels in the cookie
)

// Errors of this package. Every error the Handler reports (to
// Config.OnError) matches one of these with errors.Is, or is an error of
// the oauthclient package (oauthclient.ErrFlowExpired, *oauthclient.AuthError,
// ...) or the one Config.OnLogin returned. No error string contains a
// code, state, token or cookie value.
var (
	// ErrRefused: a request this package refuses before any token
	// request, and the message says which: a malformed callback (wrong
	// method or content type, repeated, oversized or too many
	// parameters, code together with error); a missing state or one
	// that opens no pending login of this browser (a forged or replayed
	// callback, a flow that already completed or expired; no pending
	// flow is touched); a pending-login cookie that exists but does not
	// open (tampered, sealed with a key that is not configured, moved
	// from another flow); or a return-to path that is not same-origin.
	ErrRefused = errors.New("callback: request refused")

	errBadRequest = fmt.Errorf("%w: malformed callback request", ErrRefused)
	errNoFlow     = fmt.Errorf("%w: no pending login matches this state", ErrRefused)
	errBadCookie  = fmt.Errorf("%w: pending-login cookie rejected", ErrRefused)
	errReturnTo   = fmt.Errorf("%w: return-to URL refused", ErrRefused)
	// errOnLogin wraps the error returned by Config.OnLogin (and the
	// misuse of writing to the response in it).
	errOnLogin = errors.New("callback: OnLogin failed")
)

// errMethod is the ErrRefused for a method other than GET or POST.
var errMethod = fmt.Errorf("%w: method not allowed", errBadRequest)

func badRequest(reason string) error { return fmt.Errorf("%w: %s", errBadRequest, reason) }

// parseCallback extracts the authorization response parameters from a GET
// (query) or a POST (response_mode=form_post body). Each parameter must
// appear exactly once, values are bounded, and code and error together are
// refused. It never panics on any input.
func parseCallback(r *http.Request) (url.Values, error) {
	var raw string
	switch r.Method {
	case http.MethodGet:
		raw = r.URL.RawQuery
	case http.MethodPost:
		if r.URL.RawQuery != "" {
			return nil, badRequest("form_post response with a query")
		}
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/x-www-form-urlencoded" {
			return nil, badRequest("form_post body is not application/x-www-form-urlencoded")
		}
		if r.Body == nil {
			return nil, badRequest("form_post without a body")
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, maxRawParams+1))
		if err != nil {
			return nil, badRequest("form_post body unreadable")
		}
		raw = string(b)
	default:
		return nil, errMethod
	}
	if len(raw) > maxRawParams {
		return nil, badRequest("parameters too large")
	}
	params, err := url.ParseQuery(raw)
	if err != nil {
		return nil, badRequest("parameters are not URL-encoded")
	}
	if len(params) > maxParams {
		return nil, badRequest("too many parameters")
	}
	for name, vs := range params {
		if len(vs) != 1 {
			// The name is attacker-controlled: report only known ones.
			if known[name] {
				return nil, badRequest("repeated parameter " + name)
			}
			return nil, badRequest("repeated parameter")
		}
		if len(vs[0]) > maxParamValue {
			return nil, badRequest("oversized parameter value")
		}
	}
	if _, hasErr := params["error"]; hasErr {
		if _, hasCode := params["code"]; hasCode {
			return nil, badRequest("both code and error")
		}
	}
	return params, nil
}

var known = map[string]bool{"code": true, "state": true, "error": true, "error_description": true, "error_uri": true, "iss": true}

// checkReturnTo accepts only a same-origin, path-absolute URL reference:
// "/path", optionally with a query and fragment. It refuses anything a
// browser or a later decoding step could read as another origin:
// scheme-relative "//host", "/\host", schemes ("https:evil",
// "javascript:"), leading whitespace or control characters ("%09//evil"),
// backslashes, dot segments, non-ASCII, and the percent-encoded forms of
// all of these ("/%2F%2Fevil", "/%5Cevil", double encoding).
func checkReturnTo(s string) error {
	if s == "" || len(s) > maxReturnTo {
		return fmt.Errorf("%w: empty or longer than %d bytes", errReturnTo, maxReturnTo)
	}
	// Decode repeatedly: every layer must pass the same checks, so no
	// encoding of a forbidden form gets through.
	cur := s
	for layer := 0; ; layer++ {
		if err := checkReturnToLayer(cur, layer == 0); err != nil {
			return err
		}
		next, err := url.PathUnescape(cur)
		if err != nil {
			return fmt.Errorf("%w: bad percent-encoding", errReturnTo)
		}
		if next == cur {
			break
		}
		if layer == 3 {
			return fmt.Errorf("%w: too many encoding layers", errReturnTo)
		}
		cur = next
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return fmt.Errorf("%w: not a same-origin path", errReturnTo)
	}
	return nil
}

// checkReturnToLayer checks one decoding layer of a return-to URL. A
// decoded space is allowed ("/a%20b"); a raw one is not.
func checkReturnToLayer(s string, raw bool) error {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") {
		return fmt.Errorf("%w: must start with a single /", errReturnTo)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '\\' || (raw && c == ' ') {
			return fmt.Errorf("%w: control, space, non-ASCII or backslash", errReturnTo)
		}
	}
	path := s
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("%w: dot segment", errReturnTo)
		}
	}
	return nil
}

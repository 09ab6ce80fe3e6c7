package challenge

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestParseBearerChallenge(t *testing.T) {
	cases := []struct {
		name    string
		headers []string
		want    Params
		ok      bool
	}{
		{"RFC 6750 example", []string{`Bearer realm="example", error="invalid_token", error_description="The access token expired"`},
			Params{Realm: "example", Error: "invalid_token", ErrorDescription: "The access token expired"}, true},
		{"insufficient scope with scope", []string{`Bearer realm="api", error="insufficient_scope", scope="a b  c"`},
			Params{Realm: "api", Error: "insufficient_scope", Scope: []string{"a", "b", "c"}}, true},
		{"case-insensitive scheme and names, token values", []string{`bEaReR ERROR=invalid_token, Error_URI=urn.x-y`},
			Params{Error: "invalid_token", ErrorURI: "urn.x-y"}, true},
		{"after another challenge in the same field", []string{`Basic realm="x", Bearer error="invalid_request"`},
			Params{Error: "invalid_request"}, true},
		{"in a second field", []string{`Negotiate abc==`, `Bearer error="invalid_token"`},
			Params{Error: "invalid_token"}, true},
		{"token68 scheme before", []string{`Negotiate YWJj, Bearer realm="r"`},
			Params{Realm: "r"}, true},
		{"bare Bearer", []string{`Bearer`}, Params{}, true},
		{"quoted pairs and commas in quotes", []string{`Bearer error_description="a \"quoted\", comma \\ here", error="invalid_token"`},
			Params{Error: "invalid_token", ErrorDescription: `a "quoted", comma \ here`}, true},
		{"first duplicate wins", []string{`Bearer error="invalid_token", error="insufficient_scope"`},
			Params{Error: "invalid_token"}, true},
		{"garbage param skipped", []string{`Bearer ==, error="invalid_token"`},
			Params{Error: "invalid_token"}, true},
		{"unterminated quote", []string{`Bearer error="invalid_token`}, Params{}, true},
		{"glued garbage is not a challenge", []string{`Bearer="x"`}, Params{}, false},
		{"none", []string{`Basic realm="x"`}, Params{}, false},
		{"empty", nil, Params{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.headers {
				h.Add("WWW-Authenticate", v)
			}
			got, ok := Find(h, "Bearer")
			if ok != tc.ok || got.Realm != tc.want.Realm || got.Error != tc.want.Error ||
				got.ErrorDescription != tc.want.ErrorDescription || got.ErrorURI != tc.want.ErrorURI ||
				!slices.Equal(got.Scope, tc.want.Scope) {
				t.Fatalf("got %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func quoteForChallenge(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// FuzzWWWAuthenticate feeds arbitrary header values to the parser. Besides
// never panicking, the output must respect the grammar (schemes and
// parameter names are tokens, names are lower case, bounds hold), and any
// text quoted correctly must come back exactly, whatever garbage surrounds it.
func FuzzWWWAuthenticate(f *testing.F) {
	seeds := [][2]string{
		{`Bearer realm="example", error="invalid_token", error_description="The access token expired"`, "expired"},
		{`Bearer error="insufficient_scope", scope="a b"`, `with "quotes" and \ backslash`},
		{`Basic realm="x", Bearer error=invalid_request`, ""},
		{`Negotiate YWJjZA==, Bearer`, "comma, inside"},
		{`Bearer error="\`, "\t tab"},
		{`Bearer ,,,=,"",\"`, "\xff\xfe"},
		{strings.Repeat(`Bearer a="`, 100), "x"},
		{"Bearer error=\"a\x00b\"", "ctl\x01"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, raw, desc string) {
		cs := parseAll([]string{raw, raw})
		if len(cs) > maxChallenges {
			t.Fatalf("%d challenges", len(cs))
		}
		for _, c := range cs {
			if c.scheme == "" || strings.IndexFunc(c.scheme, func(r rune) bool { return r > 0x7f || !isTokenChar(byte(r)) }) >= 0 {
				t.Fatalf("scheme %q is not a token", c.scheme)
			}
			if len(c.params) > maxChallengeParams {
				t.Fatalf("%d params", len(c.params))
			}
			for _, p := range c.params {
				if p[0] == "" || p[0] != strings.ToLower(p[0]) {
					t.Fatalf("param name %q", p[0])
				}
			}
		}
		h := http.Header{"Www-Authenticate": {raw}}
		Find(h, "Bearer")

		// Round trip: a correctly quoted description survives any prefix
		// challenge that is itself complete, and the parameters after it.
		clean := strings.Map(func(r rune) rune {
			if (r < 0x20 && r != '\t') || r == 0x7f {
				return -1
			}
			return r
		}, desc)
		if strings.ContainsRune(clean, '\uFFFD') {
			return // invalid UTF-8 was mapped; bytes differ by construction
		}
		v := `Basic realm="x", Bearer realm="api", error_description=` + quoteForChallenge(clean) + `, error="insufficient_scope", scope="s1 s2"`
		got, ok := Find(http.Header{"Www-Authenticate": {v}}, "Bearer")
		if len(v) > maxChallengeHeader {
			return
		}
		if !ok || got.ErrorDescription != clean || got.Error != "insufficient_scope" || !slices.Equal(got.Scope, []string{"s1", "s2"}) || got.Realm != "api" {
			t.Fatalf("round trip of %q: got %+v, %v", clean, got, ok)
		}
	})
}

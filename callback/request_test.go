package callback

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe/internal/testkit"
)

var goodReturnTo = []string{
	"/",
	"/home",
	"/reports?id=7",
	"/a/b/?x=1&y=%2F#frag",
	"/docs/a%20b",
	"/.well-known-ish/x..y",
}

func TestCheckReturnTo(t *testing.T) {
	for _, s := range testkit.BadReturnTo {
		if err := checkReturnTo(s); !errors.Is(err, errReturnTo) {
			t.Errorf("checkReturnTo(%q) = %v, want errReturnTo", s, err)
		}
	}
	for _, s := range goodReturnTo {
		if err := checkReturnTo(s); err != nil {
			t.Errorf("checkReturnTo(%q) = %v, want nil", s, err)
		}
	}
}

// sameOrigin reports whether a browser at https://app.test/callback that
// follows Location: s stays on https://app.test, also after the path is
// percent-decoded once more (as some routers do).
func sameOrigin(s string) bool {
	base, _ := url.Parse("https://app.test/callback")
	for range 3 {
		u, err := base.Parse(s)
		if err != nil || u.Scheme != "https" || u.Host != "app.test" || strings.HasPrefix(u.Path, "//") || strings.Contains(s, "\\") {
			return false
		}
		if s, err = url.PathUnescape(s); err != nil {
			return false
		}
	}
	return true
}

// FuzzReturnTo: whatever checkReturnTo accepts is a same-origin reference,
// at every decoding layer, without control characters or backslashes.
func FuzzReturnTo(f *testing.F) {
	for _, s := range append(testkit.BadReturnTo, goodReturnTo...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if checkReturnTo(s) != nil {
			return
		}
		if !sameOrigin(s) {
			t.Fatalf("accepted %q, which leaves the origin", s)
		}
		for i := 0; i < len(s); i++ {
			if s[i] < 0x21 || s[i] > 0x7e {
				t.Fatalf("accepted %q with a control or non-ASCII byte", s)
			}
		}
	})
}

func TestParseCallback(t *testing.T) {
	form := "application/x-www-form-urlencoded"
	for _, c := range []struct {
		method, target, ctype, body string
		ok                          bool
	}{
		{"GET", "/cb?code=c&state=s&iss=i", "", "", true},
		{"GET", "/cb?error=access_denied&state=s", "", "", true},
		{"GET", "/cb", "", "", true}, // empty: refused later for lack of state
		{"POST", "/cb", form, "code=c&state=s", true},
		{"POST", "/cb", form + "; charset=UTF-8", "code=c&state=s", true},
		{"GET", "/cb?code=c&state=s&state=s", "", "", false},
		{"GET", "/cb?code=c&code=d&state=s", "", "", false},
		{"GET", "/cb?x=1&x=1&state=s", "", "", false},
		{"GET", "/cb?code=c&error=e&state=s", "", "", false},
		{"GET", "/cb?code=&error=&state=s", "", "", false},
		{"GET", "/cb?code=c;state=s", "", "", false},
		{"GET", "/cb?code=%zz", "", "", false},
		{"GET", "/cb?code=" + strings.Repeat("a", maxParamValue+1), "", "", false},
		{"GET", "/cb?" + strings.Repeat("a=1&", 1) + strings.Repeat("b", maxRawParams), "", "", false},
		{"POST", "/cb", "text/plain", "code=c&state=s", false},
		{"POST", "/cb", "", "code=c&state=s", false},
		{"POST", "/cb", "multipart/form-data; boundary=x", "code=c&state=s", false},
		{"POST", "/cb?code=c", form, "state=s", false},
		{"POST", "/cb", form, "code=c&state=s&code=d", false},
		{"POST", "/cb", form, "code=c&state=" + strings.Repeat("s", maxRawParams), false},
		{"PUT", "/cb?code=c&state=s", "", "", false},
		{"HEAD", "/cb?code=c&state=s", "", "", false},
	} {
		r, _ := http.NewRequest(c.method, "https://app.test"+c.target, strings.NewReader(c.body))
		if c.ctype != "" {
			r.Header.Set("Content-Type", c.ctype)
		}
		p, err := parseCallback(r)
		if (err == nil) != c.ok {
			t.Errorf("%s %.60s %q: err = %v, want ok=%v", c.method, c.target, c.body, err, c.ok)
		}
		if err != nil && !errors.Is(err, errBadRequest) {
			t.Errorf("error %v does not match errBadRequest", err)
		}
		if err == nil && c.method == "POST" && p.Get("code") != "c" {
			t.Errorf("form_post params %v", p)
		}
	}
}

// FuzzParseCallback: the parser never panics, and anything it accepts has
// each parameter once, bounded values, and never both code and error.
func FuzzParseCallback(f *testing.F) {
	f.Add("GET", "", "code=c&state=s&iss=https%3A%2F%2Fi", "")
	f.Add("POST", "application/x-www-form-urlencoded", "", "code=c&state=s")
	f.Add("GET", "", "error=access_denied&error_description=%3Cb%3E&state=s", "")
	f.Add("GET", "", "code=c&error=e", "")
	f.Add("GET", "", "state=a&state=b", "")
	f.Add("POST", "multipart/form-data", "", "--x")
	f.Add("GET", "", "a=%zz;b", "")
	f.Fuzz(func(t *testing.T, method, ctype, query, body string) {
		r := &http.Request{
			Method: method,
			URL:    &url.URL{Scheme: "https", Host: "app.test", Path: "/callback", RawQuery: query},
			Header: http.Header{"Content-Type": {ctype}},
			Body:   http.NoBody,
		}
		if body != "" {
			r.Body = readCloser{strings.NewReader(body)}
		}
		p, err := parseCallback(r)
		if err != nil {
			if !errors.Is(err, errBadRequest) {
				t.Fatalf("error %v is not errBadRequest", err)
			}
			return
		}
		if len(p) > maxParams {
			t.Fatal("too many parameters accepted")
		}
		for k, vs := range p {
			if len(vs) != 1 || len(vs[0]) > maxParamValue {
				t.Fatalf("parameter %q accepted %d times or oversized", k, len(vs))
			}
		}
		_, hasCode := p["code"]
		_, hasErr := p["error"]
		if hasCode && hasErr {
			t.Fatal("code and error accepted together")
		}
	})
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

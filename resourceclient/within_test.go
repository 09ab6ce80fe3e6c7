package resourceclient

import (
	"net/url"
	"testing"
)

// TestWithinRefusesServerTraversals (S14, S28): a token goes only to URLs
// within the resource, also as servers read paths: Tomcat and Spring drop
// a ";parameter" from a segment (so "..;" is ".."), and IIS and several
// frameworks take a backslash for a slash (so "..\" climbs). A URL whose
// path a server may resolve outside the resource is not within it.
func TestWithinRefusesServerTraversals(t *testing.T) {
	res, _ := url.Parse("https://h.example/a/b")
	for _, raw := range []string{
		"https://h.example/a/b/..;/admin",
		"https://h.example/a/b/..;x=1/admin",
		"https://h.example/a/b/.;/c",
		"https://h.example/a/b/%2e%2e;/admin",
		"https://h.example/a/b/..%5cadmin",
		"https://h.example/a/b/..%5Cadmin",
		"https://h.example/a/b/%5c..%5cadmin",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if within(res, u) {
			t.Errorf("within(%s) = true, want false", raw)
		}
	}
	for _, raw := range []string{
		"https://h.example/a/b/c;v=1",
		"https://h.example/a/b/x..y",
		"https://h.example/a/b/...",
	} {
		u, _ := url.Parse(raw)
		if !within(res, u) {
			t.Errorf("within(%s) = false, want true", raw)
		}
	}
}

// TestWithinBackslashInPath: a URL built with a raw backslash in its Path
// (not parsed, so not percent-encoded by the caller) is refused as well.
func TestWithinBackslashInPath(t *testing.T) {
	res, _ := url.Parse("https://h.example/a/b")
	u := &url.URL{Scheme: "https", Host: "h.example", Path: `/a/b/..\admin`, RawPath: `/a/b/..\admin`}
	if within(res, u) {
		t.Errorf("within(%q) = true, want false", u.Path)
	}
}

package resourceclient

import (
	"net/url"
	"path"
	"strings"
	"testing"
)

// FuzzWithin (S14, S28): any URL within accepts for a resource lies under
// the resource's path by whole segments also as a server may read the
// path: percent-decoded, ";parameters" cut from each segment (before or
// after decoding), backslashes taken for slashes, then path.Clean.
func FuzzWithin(f *testing.F) {
	for _, s := range [][2]string{
		{"/a/b", "/a/b/c"},
		{"/a/b", "/a/b/..;/admin"},
		{"/a/b", "/a/b/%2e%2e%3b/admin"},
		{"/a/b", "/a/b/..%5cadmin"},
		{"/a/b/", "/a/b"},
		{"", "/mcp"},
		{"/a;v=1/b", "/a;v=1/b/c;x"},
		{"/a/b", "/a/b/.%2E/c"},
		{"/a/b", "/a/b/c%3b/../d"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, resPath, uPath string) {
		if resPath != "" && resPath[0] != '/' || uPath != "" && uPath[0] != '/' {
			return
		}
		res, err := url.Parse("https://h.example" + resPath)
		if err != nil || res.Host != "h.example" {
			return
		}
		resClean, ok := serverPaths(res.EscapedPath())
		if !ok || len(resClean) != 1 {
			return // a resource whose own path servers read differently
		}
		var us []*url.URL
		if u, err := url.Parse("https://h.example" + uPath); err == nil && u.Host == "h.example" {
			us = append(us, u)
		}
		// A URL a caller built from a path, never parsed.
		us = append(us, &url.URL{Scheme: "https", Host: "h.example", Path: uPath})
		for _, u := range us {
			if !within(res, u) {
				continue
			}
			got, ok := serverPaths(u.EscapedPath())
			if !ok {
				continue // no server can decode it: a 400, not a leak
			}
			for _, c := range got {
				if !underPath(c, resClean[0]) {
					t.Fatalf("within(%q, %q) accepted a path a server reads as %q, outside %q", res.EscapedPath(), u.EscapedPath(), c, resClean[0])
				}
			}
		}
	})
}

// serverPaths returns the ways a server may read an escaped path: decoded
// then ";parameters" cut, or cut then decoded; backslashes as slashes;
// path.Clean. False when the path does not decode.
func serverPaths(escaped string) ([]string, bool) {
	cut := func(p string) string {
		segs := strings.Split(p, "/")
		for i, s := range segs {
			segs[i], _, _ = strings.Cut(s, ";")
		}
		return strings.Join(segs, "/")
	}
	fin := func(p string) string {
		return path.Clean("/" + strings.ReplaceAll(p, `\`, "/"))
	}
	d, err := url.PathUnescape(escaped)
	if err != nil {
		return nil, false
	}
	a := fin(cut(strings.ReplaceAll(d, `\`, "/")))
	cd, err := url.PathUnescape(cut(strings.ReplaceAll(escaped, `\`, "/")))
	if err != nil {
		return nil, false
	}
	b := fin(cd)
	if a == b {
		return []string{a}, true
	}
	return []string{a, b}, true
}

// underPath reports whether the clean path p is base or under it by whole
// segments.
func underPath(p, base string) bool {
	return base == "/" || p == base || strings.HasPrefix(p, base+"/")
}

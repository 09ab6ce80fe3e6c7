package main

import (
	"path"
	"slices"
	"strings"
	"testing"
)

// FuzzGitCredential: git's request (whose host and path come from a remote
// URL anyone can write) never panics the parser or the host check, and the
// helper answers only for https and an allowed host, exactly, and for an
// allowed path only when the path, as a server resolves "." and "..",
// lies under it.
func FuzzGitCredential(f *testing.F) {
	for _, s := range []string{
		"protocol=https\nhost=git.example.com\n\n",
		"protocol=https\nhost=git.example.com\npath=team/repo.git\n\n",
		"protocol=http\nhost=git.example.com\n",
		"protocol=https\nhost=GIT.example.com:443\n",
		"protocol=https\nhost=git.example.com.evil\n",
		"host=\x00\nprotocol=https\n",
		"wwwauth[]=Bearer\nprotocol=https\nhost=code.example.org\npath=team\n",
		"protocol=https\nhost=code.example.org\npath=team/../other/repo.git\n",
		"protocol=https\nhost=code.example.org\npath=team/./x/../repo.git\n",
		"protocol=https\nhost=code.example.org\npath=../team/repo.git\n",
		"protocol=https\nhost=code.example.org\npath=team\\..\\other\n",
	} {
		f.Add(s)
	}
	origins := []string{"https://git.example.com", "https://code.example.org/team"}
	f.Fuzz(func(t *testing.T, in string) {
		attrs, err := readGitCredential(strings.NewReader(in))
		if err != nil {
			return
		}
		if gitDeclines(attrs, origins) != "" {
			return
		}
		host := strings.ToLower(attrs["host"])
		if attrs["protocol"] != "https" || host != "git.example.com" && host != "code.example.org" {
			t.Fatalf("answered for %q", attrs)
		}
		// Under code.example.org/team only: the path as a server resolves
		// it lies under /team, whatever ".." or "." it holds.
		if host == "code.example.org" {
			p := attrs["path"]
			if c := path.Clean("/" + p); c != "/team" && !strings.HasPrefix(c, "/team/") || strings.Contains(p, "\\") {
				t.Fatalf("answered for the path %q (resolved %q) outside /team", p, path.Clean("/"+p))
			}
			if slices.Contains(strings.Split(path.Clean(strings.Trim(p, "/")), "/"), "..") {
				t.Fatalf("answered for the path %q, which climbs above the root", p)
			}
		}
	})
}

package main

import (
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe/oauthtest"
)

// TestGitCredentialCleansPath: the helper's path limit compares the path
// as the server resolves it (path.Clean, segment by segment): a path that
// climbs out of the allowed one with ".." (which real git sends for a
// remote URL's %2e%2e), or above the root, or holds a backslash, is
// declined; "." and ".." that stay inside are answered. Real git, with
// useHttpPath, sends the decoded path and gets no token for the other
// team's repository.
func TestGitCredentialCleansPath(t *testing.T) {
	c := newCLI(t, oauthtest.Options{})
	mustLogin(t, c)
	allow := []string{"--allow", "https://code.example.org/team-a"}
	for _, tc := range []struct {
		path   string
		answer bool
	}{
		{"team-a/repo.git", true},
		{"team-a/./repo.git", true},
		{"team-a//repo.git", true},
		{"team-a/x/../repo.git", true},
		{"team-a/../team-b/repo.git", false},
		{"team-a/..", false},
		{"team-a/x/../../team-b/repo.git", false},
		{"../team-a/repo.git", false},
		{"team-a/../../team-a/repo.git", false},
		{"./team-b/../team-a/repo.git", true},
		{"team-a\\..\\team-b\\repo.git", false},
		{"team-ab/repo.git", false},
	} {
		in := "protocol=https\nhost=code.example.org\npath=" + tc.path + "\n\n"
		code, stdout, stderr := c.runIn(in, append(append([]string{"git-credential"}, allow...), "get")...)
		if code != exitOK {
			t.Fatalf("%q: exit %d, %s", tc.path, code, stderr)
		}
		if answered := strings.Contains(stdout, "password="); answered != tc.answer {
			t.Fatalf("path %q: answered %v (stdout %q, stderr %q), want %v", tc.path, answered, stdout, stderr, tc.answer)
		}
		if !tc.answer && !strings.Contains(stderr, "declined") {
			t.Fatalf("path %q: declined without saying why: %q", tc.path, stderr)
		}
	}

	// Real git, with the helper configured for the host and useHttpPath.
	git := c.gitRunner(t)
	helper := "!" + c.bin + " git-credential " + strings.Join(allow, " ")
	for _, args := range [][]string{
		{"config", "--global", "credential.https://code.example.org.helper", helper},
		{"config", "--global", "credential.useHttpPath", "true"},
	} {
		if _, e, err := git("", args...); err != nil {
			t.Fatal(err, e)
		}
	}
	out, stderr, err := git("url=https://code.example.org/team-a/repo.git\n\n", "credential", "fill")
	if err != nil || !strings.Contains(out, "password=") {
		t.Fatalf("git credential fill inside team-a: %v %q %q", err, out, stderr)
	}
	for _, u := range []string{
		"https://code.example.org/team-a/%2e%2e/team-b/repo.git",
		"https://code.example.org/team-a/%2E%2E/team-b/repo.git",
		"https://code.example.org/team-a/../team-b/repo.git",
	} {
		out, stderr, _ := git("url="+u+"\n\n", "credential", "fill")
		if strings.Contains(out, "password=") {
			t.Fatalf("git got a token for %s: %q", u, out)
		}
		if !strings.Contains(stderr, "declined") {
			t.Fatalf("%s: git's stderr does not say why: %q", u, stderr)
		}
	}
}

package main

import "testing"

// TestGitCredentialDotSegmentParams: a "." or ".." segment with
// ";parameters" is declined: Tomcat and Spring (Bitbucket Server among
// them) drop the parameters, so "team-a/..;/team-b" is team-b's path
// there, and "team-a/.;/../team-b" as well, while path.Clean takes "..;"
// and ".;" for names and keeps both under team-a.
func TestGitCredentialDotSegmentParams(t *testing.T) {
	origins := []string{"https://code.example.org/team-a"}
	for _, tc := range []struct {
		path   string
		answer bool
	}{
		{"team-a/..;/team-b/repo.git", false},
		{"team-a/..;x=1/team-b/repo.git", false},
		{"team-a/.;/../team-b/repo.git", false},
		{"team-a/x/..;/..;/team-b", false},
		{"team-a/repo.git;v=1", true},
		{"team-a/..x;y/repo.git", true},
	} {
		attrs := map[string]string{"protocol": "https", "host": "code.example.org", "path": tc.path}
		if answered := gitDeclines(attrs, origins) == ""; answered != tc.answer {
			t.Errorf("path %q: answered %v, want %v", tc.path, answered, tc.answer)
		}
	}
}

package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/oauthsafe/oauthsafe/oauthtest"
)

// TestServerTextNeverPrintedRaw (S22): a token endpoint (the real
// provider, with its fault injection answering refreshes) issues access
// tokens holding terminal escape sequences (ESC/OSC, a C1 CSI), newlines
// with git attributes after them, white space or DEL. `oauthsafe token`
// refuses each in every output format (raw, json, exec-credential), with
// and without the agent: exit 1, nothing on stdout, an error that does not
// quote the token. The git credential helper writes nothing: no injected
// username= or host= line reaches git. A user name with a control
// character is never written to git either.
func TestServerTextNeverPrintedRaw(t *testing.T) {
	c := newCLI(t, oauthtest.Options{})
	mustLogin(t, c)
	tokenPath := mustURL(c.srv.TokenURL).Path
	var hostile atomic.Value
	c.srv.SetInterceptor(func(w http.ResponseWriter, r *http.Request) bool {
		v, _ := hostile.Load().(string)
		if v == "" || r.URL.Path != tokenPath || r.ParseForm() != nil || r.PostForm.Get("grant_type") != "refresh_token" {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(map[string]any{"access_token": v, "token_type": "Bearer", "expires_in": 300})
		return true
	})
	const injected = "username=evil"
	for _, tc := range []struct{ name, token string }{
		{"OSC title", "tok\x1b]0;owned\x07en"},
		{"CSI colour", "tok\x1b[31mred"},
		{"C1 CSI", "tok\u009b31mred"},
		{"newline and git attributes", "tok\nusername=evil\nhost=evil.example\n"},
		{"carriage return", "tok\rusername=evil"},
		{"space", "tok en"},
		{"tab", "tok\ten"},
		{"DEL", "tok\x7fen"},
		{"NUL", "tok\x00en"},
		{"bidi override", "tok\u202een"},
	} {
		hostile.Store(tc.token)
		for _, args := range [][]string{
			{"token", "--no-agent"},
			{"token", "--no-agent", "--output", "json"},
			{"token", "--no-agent", "--output", "exec-credential"},
			{"token", "--force-refresh"}, // through the agent
		} {
			code, stdout, stderr := c.run(args...)
			if code != exitError || stdout != "" {
				t.Fatalf("%s: %v: exit %d, stdout %q; want exit 1 and nothing on stdout", tc.name, args, code, stdout)
			}
			if !strings.Contains(stderr, "not printed") || strings.ContainsAny(stderr, "\x1b\x07\u009b\u202e\x7f\x00") || strings.Contains(stderr, injected) {
				t.Fatalf("%s: %v: stderr %q; want the refusal, without the token", tc.name, args, stderr)
			}
		}
		code, stdout, stderr := c.runIn("protocol=https\nhost=git.example.com\n\n", "git-credential", "--no-agent", "--allow", "https://git.example.com", "get")
		if code != exitError || stdout != "" || strings.Contains(stderr, injected) {
			t.Fatalf("%s: git-credential get: exit %d stdout %q stderr %q; want exit 1 and nothing for git", tc.name, code, stdout, stderr)
		}
	}

	// A well-formed token is printed as is, and the git helper answers.
	hostile.Store("")
	if code, stdout, stderr := c.run("token", "--no-agent"); code != exitOK || c.userinfo(strings.TrimSuffix(stdout, "\n")) != http.StatusOK {
		t.Fatalf("a good token after the hostile ones: exit %d %s", code, stderr)
	}
	// A user name with a control character (from git or --username) is
	// never written back.
	for _, in := range []struct {
		stdin string
		extra []string
	}{
		{"protocol=https\nhost=git.example.com\nusername=a\x1b[2Jb\n\n", nil},
		{"protocol=https\nhost=git.example.com\n\n", []string{"--username", "a\rhost=evil.example"}},
	} {
		args := append(append([]string{"git-credential", "--no-agent", "--allow", "https://git.example.com"}, in.extra...), "get")
		code, stdout, _ := c.runIn(in.stdin, args...)
		if code != exitError || stdout != "" {
			t.Fatalf("git-credential with the user name of %q %v: exit %d stdout %q; want exit 1 and nothing for git", in.stdin, in.extra, code, stdout)
		}
	}
	code, stdout, stderr := c.runIn("protocol=https\nhost=git.example.com\n\n", "git-credential", "--no-agent", "--allow", "https://git.example.com", "get")
	if code != exitOK || !strings.Contains(stdout, "password=") || strings.Count(stdout, "\n") != 3 {
		t.Fatalf("git-credential with a good token: exit %d stdout %q stderr %s", code, stdout, stderr)
	}
}

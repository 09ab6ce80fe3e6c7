package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthtest"
)

// layered matches a package or command name used as a message layer: at
// the start of a ": "-separated part, followed by ": ".
var layered = regexp.MustCompile(`(?:^|: )(?:oauthsafe|oauthclient|tokenstore(?:/keyring)?|sqlstore|validate|callback|keyring|agent|login|token|status|logout|git-credential): `)

// TestMessagesHaveOneLayer: every failure the CLI reports is one line,
// "oauthsafe <command>: <what happened>; <what to do>", with no package or
// command layers inside (no "token: agent: tokenstore: ..."), and a
// server's error_description appears once. Over the error paths people
// meet: a logged-out profile (through the agent and without), a refresh
// token the server no longer accepts (with the server's text), a refused
// client secret, a missing secret file, an unknown profile, an unknown CA.
func TestMessagesHaveOneLayer(t *testing.T) {
	c := newCLI(t, oauthtest.Options{RefreshTokenLifetime: 2 * time.Second, AccessTokenLifetime: time.Second})
	dir := t.TempDir()
	wrongSecret := filepath.Join(dir, "wrong")
	os.WriteFile(wrongSecret, []byte("not-the-secret\n"), 0o600)
	cc := []string{"token", "--client-credentials", "--issuer", c.srv.Issuer, "--client-id", oauthtest.ClientService, "--ca-file", c.ca}

	check := func(name, cmd string, code, wantCode int, stderr, serverText, todo string) {
		t.Helper()
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
			if strings.HasPrefix(l, "oauthsafe") {
				lines = append(lines, l)
			}
		}
		if code != wantCode || len(lines) != 1 {
			t.Errorf("%s: exit %d (want %d), %d message lines:\n%s", name, code, wantCode, len(lines), stderr)
			return
		}
		rest, ok := strings.CutPrefix(lines[0], "oauthsafe "+cmd+": ")
		switch {
		case !ok:
			t.Errorf("%s: %q does not start with %q", name, lines[0], "oauthsafe "+cmd+": ")
		case layered.MatchString(rest):
			t.Errorf("%s: layers in %q", name, rest)
		case !strings.Contains(rest, "; ") || !strings.Contains(rest[strings.Index(rest, "; "):], todo):
			t.Errorf("%s: %q does not end with what to do (%q)", name, rest, todo)
		case serverText != "" && strings.Count(stderr, serverText) != 1:
			t.Errorf("%s: the server's text %q appears %d times in %q", name, serverText, strings.Count(stderr, serverText), stderr)
		}
	}

	mustLogin(t, c)
	time.Sleep(3 * time.Second) // the refresh token has expired at the server
	code, _, stderr := c.run("token")
	check("expired refresh token, agent", "token", code, exitLoginRequired, stderr, "", "oauthsafe login")
	code, _, stderr = c.run("logout")
	if code != exitOK {
		t.Fatalf("logout: %s", stderr)
	}
	code, _, stderr = c.run("token")
	check("logged out, agent", "token", code, exitLoginRequired, stderr, "", "oauthsafe login")
	code, _, stderr = c.run("token", "--no-agent")
	check("logged out, no agent", "token", code, exitLoginRequired, stderr, "", "oauthsafe login")

	code, _, stderr = c.run(append(cc, "--client-secret-file", wrongSecret)...)
	check("refused client secret", "token", code, exitError, stderr, "", "--client-id")
	code, _, stderr = c.run(append(cc, "--client-secret-file", filepath.Join(dir, "absent"))...)
	check("missing secret file", "token", code, exitError, stderr, "", "")
	code, _, stderr = c.run("status", "--profile", "nobody")
	check("unknown profile", "status", code, exitLoginRequired, stderr, "", "oauthsafe login")
	code, _, stderr = c.run("login", "--no-browser", "--issuer", c.srv.Issuer, "--client-id", oauthtest.ClientNative)
	check("unknown CA", "login", code, exitError, stderr, "", "--ca-file")
}

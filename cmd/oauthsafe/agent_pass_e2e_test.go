package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe/oauthtest"
)

// TestAgentChecksPassphrase: with the encrypted file store, the agent
// serves a caller only what the caller's own passphrase opens. A caller
// with the wrong passphrase gets the same failure as without the agent (and
// no token), whoever started the agent; a wrong passphrase does not poison
// the agent (the right one is served at once, from the warm source, with
// no new refresh); and an agent started by a caller with the wrong
// passphrase serves the right one.
func TestAgentChecksPassphrase(t *testing.T) {
	c := newCLI(t, oauthtest.Options{})
	const right = envFilePassphrase + "=correct horse battery staple"
	c.setenv(right)
	mustLogin(t, c, "--store", "file")
	c.run("agent", "stop")
	refreshes := func() int { return c.srv.TokenRequests("refresh_token") }

	tok := c.tokens(1)[0] // starts the agent with the right passphrase in its environment
	if c.userinfo(tok) != http.StatusOK {
		t.Fatal("token not accepted")
	}
	c.setenv(envFilePassphrase + "=wrong")
	_, _, direct := c.run("token", "--no-agent")
	before := refreshes()
	code, stdout, stderr := c.run("token")
	if code != exitError || stdout != "" || !strings.Contains(stderr, "passphrase does not open") {
		t.Fatalf("wrong passphrase through the agent: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	if !strings.Contains(direct, "passphrase does not open") {
		t.Fatalf("without the agent the wrong passphrase says %q", direct)
	}
	c.setenv(right)
	if got := c.tokens(1)[0]; got != tok || refreshes() != before {
		t.Fatalf("the right passphrase after a wrong one: a new token (%v) or %d refreshes: the agent was poisoned", got != tok, refreshes()-before)
	}

	// An agent started by a caller with the wrong passphrase.
	c.run("agent", "stop")
	c.setenv(envFilePassphrase + "=wrong")
	if code, stdout, _ := c.run("token"); code != exitError || stdout != "" {
		t.Fatalf("wrong passphrase starting the agent: exit %d stdout %q", code, stdout)
	}
	c.setenv(right)
	if got := c.tokens(1)[0]; c.userinfo(got) != http.StatusOK {
		t.Fatal("the right passphrase with an agent started by a wrong one got no valid token")
	}
	if _, st := c.statusJSON(); st["agent"] == nil {
		t.Fatalf("no agent ran: %v", st)
	}
}

package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/oauthtest/demoapi"
)

// TestCLIResourceFirstLogin (S28, S1): `oauthsafe login URL` with nothing
// but a resource's URL: the issuer is discovered and shown on stderr
// before the authorization URL, the client registers itself, and the
// profile named after the resource serves `token URL` (a token the
// resource accepts), `status URL` (resource, issuer, client, the
// loopback flag) and `logout URL`.
func TestCLIResourceFirstLogin(t *testing.T) {
	c := newCLI(t, oauthtest.Options{})
	mux := http.NewServeMux()
	rs := httptest.NewUnstartedServer(mux)
	c.srv.StartTLS(rs)
	t.Cleanup(rs.Close)
	resource := rs.URL + "/mcp"
	api, err := demoapi.NewResource(context.Background(), c.srv, demoapi.ResourceConfig{Resource: resource, ChallengeScope: []string{oauthtest.ScopeAPIRead}})
	if err != nil {
		t.Fatal(err)
	}
	mux.HandleFunc("/.well-known/oauth-protected-resource/mcp", api.ServeMetadata)
	mux.Handle("/mcp", api.Require(oauthtest.ScopeAPIRead, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))

	// Plain http is refused without --allow-loopback-http (S1), before
	// anything is sent.
	if code, _, stderr := c.run("login", "http://127.0.0.1:1/mcp", "--no-browser"); code != exitError || !strings.Contains(stderr, "https") {
		t.Fatalf("login over plain http without the flag: exit %d\n%s", code, stderr)
	}

	code, stdout, stderr := c.loginArgs("login", resource, "--no-browser", "--ca-file", c.ca, "--allow-loopback-http")
	if code != exitOK || stdout != "" {
		t.Fatalf("login URL: exit %d, stdout %q\n%s", code, stdout, stderr)
	}
	shown := strings.Index(stderr, "asks you to sign in at "+c.srv.Issuer)
	authAt := strings.Index(stderr, c.srv.AuthURL+"?")
	if shown < 0 || authAt < 0 || shown > authAt {
		t.Fatalf("the issuer is not shown before the authorization URL:\n%s", stderr)
	}
	if !strings.Contains(stderr, "AllowLoopbackHTTP") {
		t.Errorf("--allow-loopback-http logged no warning:\n%s", stderr)
	}
	if c.srv.Registrations() != 1 {
		t.Fatalf("%d dynamic registrations, want 1", c.srv.Registrations())
	}

	// token URL: a token the resource accepts.
	code, stdout, stderr = c.run("token", resource, "--no-agent")
	if code != exitOK {
		t.Fatalf("token URL: exit %d\n%s", code, stderr)
	}
	tok := strings.TrimSpace(stdout)
	req, _ := http.NewRequest(http.MethodGet, resource, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.srv.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the resource answered %d to the printed token", resp.StatusCode)
	}
	// And through the agent.
	if code, stdout, stderr = c.run("token", resource); code != exitOK || strings.TrimSpace(stdout) == "" {
		t.Fatalf("token URL with the agent: exit %d\n%s", code, stderr)
	}

	// status URL shows the resource, the discovered issuer and the flag.
	code, stdout, stderr = c.run("status", resource, "--json")
	if code != exitOK {
		t.Fatalf("status URL: exit %d\n%s", code, stderr)
	}
	var st statusJSON
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatal(err)
	}
	if st.Issuer != c.srv.Issuer || st.ResourceURL != resource || !st.AllowLoopbackHTTP || st.RefreshToken != "present" || st.ClientID == "" {
		t.Fatalf("status: %+v", st)
	}
	// The profile is the resource's own: the default profile is untouched.
	if st.Profile != resourceProfileName(resource) {
		t.Fatalf("profile %q, want the resource's %q", st.Profile, resourceProfileName(resource))
	}
	if code, _, _ = c.run("status"); code != exitLoginRequired {
		t.Fatalf("status of the default profile: exit %d, want %d (no login there)", code, exitLoginRequired)
	}
	// accounts lists the resource's profile.
	code, stdout, _ = c.run("accounts", "--json")
	var accts []account
	if code != exitOK || json.Unmarshal([]byte(stdout), &accts) != nil || len(accts) != 1 || accts[0].Profile != resourceProfileName(resource) || accts[0].Issuer != c.srv.Issuer {
		t.Fatalf("accounts: exit %d\n%s", code, stdout)
	}
	if code, stdout, _ = c.run("status", resource); code != exitOK || !strings.Contains(stdout, "Loopback:") || !strings.Contains(stdout, "Resource:   "+resource) {
		t.Fatalf("status text:\n%s", stdout)
	}
	if strings.Contains(c.allStderr(), tok) {
		t.Fatal("a token reached stderr")
	}

	// logout URL, then token URL needs a new login.
	if code, _, stderr = c.run("logout", resource); code != exitOK {
		t.Fatalf("logout URL: exit %d\n%s", code, stderr)
	}
	if code, _, _ = c.run("token", resource, "--no-agent"); code != exitLoginRequired {
		t.Fatalf("token after logout: exit %d, want %d", code, exitLoginRequired)
	}
}

package main

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/oauthsafe/oauthsafe/oauthtest"
)

// clientCreds records the client credentials a server received at its
// token endpoint, as "client_id:secret" ("client_id:" without a secret).
type clientCreds struct {
	mu   sync.Mutex
	seen []string
}

func (cc *clientCreds) hook(tokenURL string) func(*http.Request) {
	path := mustURL(tokenURL).Path
	return func(r *http.Request) {
		if r.URL.Path != path {
			return
		}
		id, sec, ok := r.BasicAuth()
		if ok {
			id, _ = url.QueryUnescape(id)
			sec, _ = url.QueryUnescape(sec)
		} else if err := r.ParseForm(); err == nil {
			id, sec = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		cc.mu.Lock()
		cc.seen = append(cc.seen, id+":"+sec)
		cc.mu.Unlock()
	}
}

func (cc *clientCreds) take() []string {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	out := cc.seen
	cc.seen = nil
	return out
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// freeLoopbackPort returns a port that was free on 127.0.0.1 a moment ago.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestAgentKeepsProfilesApart (S16, S17): two profiles of two confidential
// clients at two issuers, each client's secret given to `token` in the
// caller's environment (as OAUTHSAFE_CLIENT_SECRET). With the agent
// running, started by either profile's caller (both orders), each issuer
// receives only its own client's secret, never the other's: the agent
// serves each caller with the credentials that caller sent, never with
// those of the caller that started it. A caller without a secret (a clean
// shell) is not served with another caller's either: its issuer sees no
// secret at all.
func TestAgentKeepsProfilesApart(t *testing.T) {
	portA, portB := freeLoopbackPort(t), freeLoopbackPort(t)
	cb := func(port int) string { return fmt.Sprintf("http://127.0.0.1:%d/callback", port) }
	c := newCLI(t, oauthtest.Options{RedirectURIs: []string{cb(portA)}})
	srvA := c.srv
	srvB, err := oauthtest.Start(oauthtest.Options{RedirectURIs: []string{cb(portB)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srvB.Close)
	caB := filepath.Join(t.TempDir(), "ca-b.pem")
	if err := os.WriteFile(caB, srvB.CACertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	type prof struct {
		srv            *oauthtest.Server
		client, secret string
		ca             string
		port           int
		seen           *clientCreds
	}
	profiles := map[string]*prof{
		"a": {srvA, oauthtest.ClientWeb, oauthtest.WebSecret, c.ca, portA, &clientCreds{}},
		"b": {srvB, oauthtest.ClientWebJWTAccess, oauthtest.WebJWTAccessSecret, caB, portB, &clientCreds{}},
	}
	for name, p := range profiles {
		p.srv.SetHook(p.seen.hook(p.srv.TokenURL))
		c.srv = p.srv // the test browser signs in at this profile's server
		c.setenv(envClientSecret + "=" + p.secret)
		code, _, stderr := c.loginArgs("login", "--no-browser", "--profile", name, "--issuer", p.srv.Issuer,
			"--client-id", p.client, "--scope", "openid offline_access", "--ca-file", p.ca,
			"--listen", fmt.Sprintf("127.0.0.1:%d", p.port))
		if code != exitOK {
			t.Fatalf("login %s: exit %d\n%s", name, code, stderr)
		}
	}
	c.srv = srvA
	// Each issuer may see its own client's credentials, or none; never
	// another secret.
	check := func(round string) {
		t.Helper()
		for name, p := range profiles {
			for _, got := range p.seen.take() {
				if got != p.client+":"+p.secret && got != p.client+":" {
					t.Errorf("%s: the issuer of profile %s received the client credentials %q; want only %q", round, name, got, p.client+":"+p.secret)
				}
			}
		}
	}
	check("login")

	for _, order := range [][2]string{{"a", "b"}, {"b", "a"}} {
		round := "agent started by " + order[0]
		c.run("agent", "stop")
		var tokens [2]string
		var codes [2]int
		var errs [2]string
		for i, name := range order {
			c.setenv(envClientSecret + "=" + profiles[name].secret)
			var out string
			codes[i], out, errs[i] = c.run("token", "--profile", name, "--force-refresh")
			tokens[i] = strings.TrimSpace(out)
		}
		if _, out, _ := c.run("agent", "status"); !strings.Contains(out, "agent: running") {
			t.Fatalf("%s: the agent is not running: %q", round, out)
		}
		// A clean shell: no client secret at all.
		c.setenv(envClientSecret + "=")
		cleanCode, cleanOut, _ := c.run("token", "--profile", order[1], "--force-refresh")
		check(round)
		for i, name := range order {
			if codes[i] != exitOK {
				t.Fatalf("%s: token --profile %s with its own secret: exit %d\n%s", round, name, codes[i], errs[i])
			}
		}
		for i, name := range order {
			c.srv = profiles[name].srv
			if c.userinfo(tokens[i]) != http.StatusOK {
				t.Errorf("%s: profile %s's token is not accepted by its issuer", round, name)
			}
		}
		c.srv = srvA
		if cleanCode == exitOK || cleanOut != "" {
			t.Fatalf("%s: a caller without the secret of %s was served (exit %d, %d bytes on stdout)", round, order[1], cleanCode, len(cleanOut))
		}
	}
	for _, s := range []string{oauthtest.WebSecret, oauthtest.WebJWTAccessSecret} {
		if strings.Contains(c.allStderr(), s) {
			t.Fatal("a client secret was printed on stderr")
		}
	}
}

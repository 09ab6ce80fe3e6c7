package main

import (
	"strings"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthtest"
)

// TestLoginNeverSwitchesGrantSilently: on a machine without a browser (no
// DISPLAY, WAYLAND_DISPLAY or BROWSER) and against a server that offers
// the device grant, `login` stays with the authorization-code flow on the
// loopback: it says on stderr that no browser can be opened and prints the
// URL to open by hand; the device endpoint is never called. An --issuer
// without --client-id (or the reverse) is a usage error, not a silent reuse
// of the saved profile's client with another issuer; with neither, the
// saved client is reused and named. --help says all this.
func TestLoginNeverSwitchesGrantSilently(t *testing.T) {
	c := newCLI(t, oauthtest.Options{DevicePollInterval: time.Second})
	mustLogin(t, c)
	devicePath := pathOf(t, c.srv.DeviceURL)
	authPath := pathOf(t, c.srv.AuthURL)
	auths := c.srv.Count(authPath)

	for _, args := range [][]string{
		{"login", "--issuer", c.srv.Issuer},
		{"login", "--issuer", "https://other.example.com"},
		{"login", "--client-id", oauthtest.ClientDevice},
	} {
		code, stdout, stderr := c.run(args...)
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, "--issuer and --client-id go together") {
			t.Fatalf("%v: exit %d stdout %q stderr %q; want a usage error", args, code, stdout, stderr)
		}
	}
	if c.srv.Count(devicePath) != 0 || c.srv.Count(authPath) != auths {
		t.Fatal("a refused login reached the server")
	}

	// No --no-browser, no browser: loopback, said so, never the device grant.
	code, _, stderr := c.loginArgs("login", "--issuer", c.srv.Issuer, "--client-id", oauthtest.ClientNative,
		"--scope", "openid profile offline_access", "--ca-file", c.ca)
	if code != exitOK {
		t.Fatalf("login without a browser: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "No browser can be opened here") || !strings.Contains(stderr, "--device") {
		t.Fatalf("login without a browser did not say what it does:\n%s", stderr)
	}
	// With neither flag: the saved client, named.
	code, _, stderr = c.loginArgs("login")
	if code != exitOK || !strings.Contains(stderr, "client "+oauthtest.ClientNative+" at "+c.srv.Issuer) {
		t.Fatalf("login with the saved profile: exit %d\n%s", code, stderr)
	}
	if n := c.srv.Count(devicePath); n != 0 {
		t.Fatalf("the device endpoint was called %d times without --device", n)
	}
	_, _, help := c.run("login", "--help")
	if !strings.Contains(help, "never changes the grant") || !strings.Contains(help, "--device") {
		t.Fatalf("login --help does not say when the device grant is used:\n%s", help)
	}
}

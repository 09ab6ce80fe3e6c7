package main

import (
	"strings"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/testkit/keyringtest"
	"github.com/oauthsafe/oauthsafe/oauthtest"
)

// TestKeyringFailuresAreFastAndClear: with no D-Bus session bus, with a bus
// that has no Secret Service, and with a locked keyring on a machine where
// nothing can ask to unlock it, `login` (before the browser opens) and
// `token` each fail within 5 s, with exit 1 and one line that says what is
// wrong and what to do (--store file among it); never the D-Bus library's
// own words (dbus-launch, exec:) and never a timeout of minutes.
func TestKeyringFailuresAreFastAndClear(t *testing.T) {
	c := newCLI(t, oauthtest.Options{})
	mustLogin(t, c)
	c.run("agent", "stop")
	authPath := pathOf(t, c.srv.AuthURL)
	auths := c.srv.Count(authPath)
	for _, tc := range []struct {
		name, bus, want string
		lock            bool
	}{
		{"no bus", "", "no D-Bus session bus", false},
		{"no Secret Service", keyringtest.EmptyBus(t), "no Secret Service", false},
		{"locked", c.getenv("DBUS_SESSION_BUS_ADDRESS"), "locked", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.lock {
				if err := c.kr.Lock(); err != nil {
					t.Fatal(err)
				}
			}
			c.setenv("DBUS_SESSION_BUS_ADDRESS=" + tc.bus)
			for _, args := range [][]string{
				{"login", "--no-browser", "--issuer", c.srv.Issuer, "--client-id", oauthtest.ClientNative, "--ca-file", c.ca},
				{"token", "--no-agent"},
			} {
				start := time.Now()
				code, stdout, stderr := c.run(args...)
				d := time.Since(start)
				switch {
				case d > 5*time.Second:
					t.Errorf("%s: %v took %v", tc.name, args[0], d)
				case code != exitError || stdout != "":
					t.Errorf("%s: %v: exit %d stdout %q", tc.name, args[0], code, stdout)
				case strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "oauthsafe "+args[0]+": "):
					t.Errorf("%s: %v: not one line: %q", tc.name, args[0], stderr)
				case !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "--store file"):
					t.Errorf("%s: %v: %q does not say %q and what to do", tc.name, args[0], stderr, tc.want)
				case strings.Contains(stderr, "dbus-launch") || strings.Contains(stderr, "exec:") || strings.Contains(stderr, "did not answer"):
					t.Errorf("%s: %v: a library's words: %q", tc.name, args[0], stderr)
				}
			}
		})
	}
	if c.srv.Count(authPath) != auths {
		t.Fatal("a login with an unusable keyring reached the authorization endpoint")
	}
}

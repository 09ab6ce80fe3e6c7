package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// The in-process commands must never start the test binary as an agent.
func init() { agentCanStart = false }

func testEnv() (*env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}, &out, &errb
}

func TestHelpForEveryCommand(t *testing.T) {
	for _, name := range []string{"login", "token", "status", "logout"} {
		t.Run(name, func(t *testing.T) {
			e, out, errb := testEnv()
			if code := run(context.Background(), e, []string{name, "--help"}); code != exitOK {
				t.Fatalf("exit %d", code)
			}
			if out.Len() != 0 {
				t.Fatal("help went to stdout")
			}
			h := errb.String()
			_, examples, _ := strings.Cut(h, "Examples:\n")
			if !strings.Contains(h, "Usage: oauthsafe "+name) || !strings.Contains(examples, "  oauthsafe "+name) || !strings.Contains(h, "-profile") {
				t.Fatalf("help lacks usage, examples or flags:\n%s", h)
			}
		})
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	cases := [][]string{
		{"login"}, // no issuer, no saved profile
		{"login", "--issuer", "https://127.0.0.1:1", "--client-id", "x", "--device", "--no-browser"},
		{"login", "--issuer", "https://127.0.0.1:1", "--client-id", "x", "--profile", "../evil"},
		{"login", "--client-secret", "s3cr3t"},
		{"token", "extra-arg"},
		{"token", "--issuer", "https://127.0.0.1:1"},
		{"token", "--client-credentials", "--issuer", "https://127.0.0.1:1"},
		{"status", "--bogus"},
		{"logout", "x"},
	}
	for _, args := range cases {
		e, out, errb := testEnv()
		if code := run(context.Background(), e, args); code != exitUsage {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, errb.String())
		}
		if out.Len() != 0 {
			t.Errorf("%v wrote to stdout", args)
		}
		if strings.Contains(errb.String(), "s3cr3t") {
			t.Errorf("%v echoed the secret", args)
		}
	}
}

func TestNoLoginExits3(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	for _, cmd := range []string{"token", "status", "logout"} {
		e, out, errb := testEnv()
		if code := run(context.Background(), e, []string{cmd}); code != exitLoginRequired {
			t.Errorf("%s without a login: exit %d, want 3", cmd, code)
		}
		if out.Len() != 0 || !strings.Contains(errb.String(), "run `oauthsafe login`") {
			t.Errorf("%s: stdout %q stderr %q", cmd, out.String(), errb.String())
		}
	}
}

func TestProfileFiles(t *testing.T) {
	cfg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfg)
	p := &profile{Issuer: "https://id.example", ClientID: "cli", Scopes: []string{"openid"}, Subject: "alice"}
	if err := saveProfile("work", p); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg, "oauthsafe", "work.json")
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("profile mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if di, _ := os.Stat(filepath.Dir(path)); di.Mode().Perm() != 0o700 {
		t.Fatalf("directory mode %v, want 0700", di.Mode().Perm())
	}
	got, err := loadProfile("work")
	if err != nil || got.Subject != "alice" || got.storeKey("work") != p.storeKey("work") {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	// Accounts never share a key; a profile without a subject has its own.
	other := *p
	other.Subject = "bob"
	if other.storeKey("work") == p.storeKey("work") {
		t.Fatal("two subjects share a keyring key")
	}
	noSub := *p
	noSub.Subject = ""
	if noSub.storeKey("work") == noSub.storeKey("home") {
		t.Fatal("two profiles without subject share a keyring key")
	}
	// A profile others can write names a CA to trust: refused.
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := loadProfile("work"); err == nil {
		t.Fatal("a world-writable profile was loaded")
	}
	for _, bad := range []string{"", "../x", "a/b", ".hidden", strings.Repeat("a", 65)} {
		if _, err := profilePath(bad); err == nil {
			t.Errorf("profile name %q accepted", bad)
		}
	}
}

// TestReloginNamesTheResource: a resource-first profile that needs a new
// login says the command that logs in again, with its resource URL; any
// other profile says plain `oauthsafe login`. Exit status 3 either way.
func TestReloginNamesTheResource(t *testing.T) {
	for _, tc := range []struct{ relogin, want string }{
		{"", "run `oauthsafe login`\n"},
		{"https://mcp.example.com/mcp", "run `oauthsafe login https://mcp.example.com/mcp`\n"},
	} {
		e, _, errb := testEnv()
		e.cmd, e.relogin = "token", tc.relogin
		if code := e.fail(fmt.Errorf("token: %w", tokenstore.ErrLoginRequired)); code != exitLoginRequired {
			t.Errorf("relogin %q: exit %d, want %d", tc.relogin, code, exitLoginRequired)
		}
		if got := errb.String(); !strings.HasSuffix(got, tc.want) {
			t.Errorf("relogin %q: %q does not end with %q", tc.relogin, got, tc.want)
		}
	}
}

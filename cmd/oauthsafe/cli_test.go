package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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

// TestHelpListsCommandsInOrder pins the order of the commands in --help
// (the order a user needs them, not the files'), and checks that every
// command of the dispatch table is listed there exactly once, with a
// summary; so are help and version, which run answers itself. No command
// prints the same list (exit 2; an unknown command is a one-line usage
// error, TestStatusJSONAndExitCodes). Each command's --help prints its
// usage.
func TestHelpListsCommandsInOrder(t *testing.T) {
	want := []string{"login", "token", "status", "logout", "accounts", "switch", "git-credential", "agent", "demo", "version", "help"}
	line := regexp.MustCompile(`^  ([a-z-]+) {2,}(\S.*)$`)
	listed := func(args ...string) []string {
		e, out, errb := testEnv()
		wantCode := exitUsage
		if len(args) > 0 && args[0] == "--help" {
			wantCode = exitOK
		}
		if code := run(context.Background(), e, args); code != wantCode {
			t.Errorf("%q: exit %d, want %d", args, code, wantCode)
		}
		if out.Len() != 0 {
			t.Errorf("%q: the list went to stdout", args)
		}
		var names []string
		for _, l := range strings.Split(errb.String(), "\n") {
			if m := line.FindStringSubmatch(l); m != nil {
				names = append(names, m[1])
			}
		}
		return names
	}
	got := listed("--help")
	if !slices.Equal(got, want) {
		t.Errorf("--help lists\n  %q\nwant\n  %q", got, want)
	}
	count := map[string]int{}
	for _, n := range got {
		count[n]++
	}
	for name := range commands {
		if count[name] != 1 {
			t.Errorf("command %q is listed %d times in --help, want once", name, count[name])
		}
	}
	for _, name := range got {
		if _, ok := commands[name]; !ok && name != "help" && name != "version" {
			t.Errorf("--help lists %q, which is no command", name)
		}
	}
	if l := listed(); !slices.Equal(l, got) {
		t.Errorf("no command lists %q, want the --help list %q", l, got)
	}
	// Each command's own --help: its usage, on stderr, exit 0.
	for name := range commands {
		e, out, errb := testEnv()
		if code := run(context.Background(), e, []string{name, "--help"}); code != exitOK || out.Len() != 0 || !strings.HasPrefix(errb.String(), "Usage: oauthsafe "+name) {
			t.Errorf("%s --help: exit %d, stdout %q, stderr %q", name, code, out.String(), errb.String())
		}
	}
}

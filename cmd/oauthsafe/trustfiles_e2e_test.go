package main

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// configDir is os.UserConfigDir as the CLI under test sees it.
func (c *cli) configDir() string {
	home := ""
	for _, kv := range c.env {
		if v, ok := strings.CutPrefix(kv, "XDG_CONFIG_HOME="); ok && v != "" {
			return v
		}
		if v, ok := strings.CutPrefix(kv, "HOME="); ok {
			home = v
		}
	}
	return filepath.Join(home, ".config")
}

// editProfile rewrites one field of a saved profile, as an older version
// (or an attacker with the user's rights) would have left it.
func (c *cli) editProfile(t *testing.T, name, field string, value any) {
	t.Helper()
	path := filepath.Join(c.configDir(), "oauthsafe", name+".json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m[field] = value
	b, _ = json.Marshal(m)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (c *cli) profileField(t *testing.T, name, field string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.configDir(), "oauthsafe", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	s, _ := m[field].(string)
	return s
}

// relToCwd returns path relative to the working directory the CLI runs in
// (this test's).
func relToCwd(t *testing.T, path string) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, path)
	if err != nil || filepath.IsAbs(rel) {
		t.Fatalf("no relative path to %s: %v", path, err)
	}
	return rel
}

// TestTrustFilesAreAbsoluteAndChecked (S2, S16): a relative --ca-file or
// --client-secret-file is kept in the profile as an absolute path, so the
// working directory of a later command never chooses the trust anchor or
// the secret; a profile that still holds a relative path (an older
// version's) is refused with what to do; and the files are checked when
// used: a CA file others may write is refused (then accepted again once
// fixed), as the library's loaders (strictnet.RootsFromFile,
// secret.FromFile) refuse it.
func TestTrustFilesAreAbsoluteAndChecked(t *testing.T) {
	c := newCLI(t, oauthtest.Options{})
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, c.srv.CACertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	rel := relToCwd(t, ca)
	code, _, stderr := c.loginArgs("login", "--no-browser", "--issuer", c.srv.Issuer, "--client-id", oauthtest.ClientNative,
		"--scope", "openid offline_access", "--ca-file", rel)
	if code != exitOK {
		t.Fatalf("login with a relative --ca-file: exit %d\n%s", code, stderr)
	}
	if got := c.profileField(t, "default", "ca_file"); got != ca {
		t.Fatalf("the profile keeps ca_file %q, want the absolute %q", got, ca)
	}
	if code, out, stderr := c.run("token", "--no-agent"); code != exitOK || out == "" {
		t.Fatalf("token: exit %d\n%s", code, stderr)
	}

	// Checked when used: a CA file others may write is refused.
	os.Chmod(ca, 0o666)
	code, _, stderr = c.run("token", "--no-agent", "--force-refresh")
	if code != exitError || !strings.Contains(stderr, "not be writable by group or others") {
		t.Fatalf("a 0666 CA file: exit %d\n%s", code, stderr)
	}
	if _, err := strictnet.RootsFromFile(ca); !errors.Is(err, strictnet.ErrPolicy) {
		t.Fatalf("the library loader took a 0666 CA file: %v", err)
	}
	os.Chmod(ca, 0o644)
	if code, _, stderr := c.run("token", "--no-agent", "--force-refresh"); code != exitOK {
		t.Fatalf("the fixed CA file: exit %d\n%s", code, stderr)
	}

	// A profile holding a relative path is refused, whatever the directory holds.
	c.editProfile(t, "default", "ca_file", rel)
	code, _, stderr = c.run("token", "--no-agent", "--force-refresh")
	if code != exitError || !strings.Contains(stderr, "relative path") || !strings.Contains(stderr, "absolute --ca-file") {
		t.Fatalf("a relative ca_file in the profile: exit %d\n%s", code, stderr)
	}
	c.editProfile(t, "default", "ca_file", ca)
	c.editProfile(t, "default", "client_secret_file", "client_secret")
	code, _, stderr = c.run("token", "--no-agent", "--force-refresh")
	if code != exitError || !strings.Contains(stderr, "absolute --client-secret-file") {
		t.Fatalf("a relative client_secret_file in the profile: exit %d\n%s", code, stderr)
	}

	// The client credentials mode: relative paths are made absolute too,
	// and the secret file is checked.
	sec := filepath.Join(dir, "client_secret")
	os.WriteFile(sec, []byte(oauthtest.ServiceSecret+"\n"), 0o600)
	cc := []string{"token", "--client-credentials", "--issuer", c.srv.Issuer, "--client-id", oauthtest.ClientService,
		"--ca-file", rel, "--client-secret-file", relToCwd(t, sec)}
	if code, out, stderr := c.run(cc...); code != exitOK || out == "" {
		t.Fatalf("client credentials with relative paths: exit %d\n%s", code, stderr)
	}
	os.Chmod(sec, 0o644)
	if code, _, stderr := c.run(cc...); code != exitError || !strings.Contains(stderr, "0600") {
		t.Fatalf("a 0644 secret file: exit %d\n%s", code, stderr)
	}
}

// TestFailedLoginLeavesNoFiles: a login with --store file that fails after
// the store was probed (here: nothing listens at the issuer) removes the
// encrypted file and its lock it created, at the path given and at the
// default path, and says what to do about the refused connection; a store
// file that existed before is kept. Without a passphrase, the advice is
// given once.
func TestFailedLoginLeavesNoFiles(t *testing.T) {
	c := newCLI(t, oauthtest.Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "https://" + l.Addr().String()
	l.Close()
	dir := t.TempDir()
	os.Chmod(dir, 0o700) // the file store's directory must be private
	store := filepath.Join(dir, "tokens.enc")

	code, _, stderr := c.run("login", "--no-browser", "--issuer", dead, "--client-id", oauthtest.ClientNative, "--store", "file", "--store-file", store)
	if code != exitError || strings.Count(stderr, envFilePassphrase) != 1 {
		t.Fatalf("no passphrase: exit %d, the advice %d times:\n%s", code, strings.Count(stderr, envFilePassphrase), stderr)
	}
	c.setenv(envFilePassphrase + "=correct horse battery staple")
	code, _, stderr = c.run("login", "--no-browser", "--issuer", dead, "--client-id", oauthtest.ClientNative, "--store", "file", "--store-file", store)
	if code != exitError || !strings.Contains(stderr, "nothing accepts connections at "+strings.TrimPrefix(dead, "https://")) {
		t.Fatalf("refused issuer: exit %d, no hint:\n%s", code, stderr)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("the failed login left %d files: %v", len(left), left[0].Name())
	}
	defaultDir := filepath.Join(c.configDir(), "oauthsafe")
	code, _, _ = c.run("login", "--no-browser", "--issuer", dead, "--client-id", oauthtest.ClientNative, "--store", "file")
	if code != exitError {
		t.Fatal("the login did not fail")
	}
	for _, f := range []string{"tokens.enc", "tokens.enc.lock"} {
		if _, err := os.Stat(filepath.Join(defaultDir, f)); err == nil {
			t.Fatalf("the failed login left %s in %s", f, defaultDir)
		}
	}

	// A store file that existed before a failed login stays.
	mustLogin(t, c, "--store", "file", "--store-file", store)
	code, _, _ = c.run("login", "--no-browser", "--profile", "other", "--issuer", dead, "--client-id", oauthtest.ClientNative, "--store", "file", "--store-file", store)
	if code != exitError {
		t.Fatal("the login did not fail")
	}
	if _, err := os.Stat(store); err != nil {
		t.Fatalf("a failed login removed the existing store: %v", err)
	}
	if code, out, stderr := c.run("token", "--no-agent"); code != exitOK || out == "" {
		t.Fatalf("the first login's token after the failed one: exit %d\n%s", code, stderr)
	}
}

// TestStatusLoggedInField: after logout, status prints the profile's block
// and exits 3 (as its --help and the README say), with "logged_in": false
// in --json; logged in, it exits 0 with "logged_in": true.
func TestStatusLoggedInField(t *testing.T) {
	c := newCLI(t, oauthtest.Options{})
	mustLogin(t, c)
	read := func() (int, map[string]any) {
		code, out, stderr := c.run("status", "--json")
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("status --json: %v\n%s\n%s", err, out, stderr)
		}
		return code, m
	}
	if code, m := read(); code != exitOK || m["logged_in"] != true {
		t.Fatalf("logged in: exit %d, logged_in %v", code, m["logged_in"])
	}
	if code, _, stderr := c.run("logout"); code != exitOK {
		t.Fatalf("logout: %s", stderr)
	}
	if code, m := read(); code != exitLoginRequired || m["logged_in"] != false || m["issuer"] != c.srv.Issuer {
		t.Fatalf("after logout: exit %d, %v", code, m)
	}
}

// TestIssuerTrailingSlashHint: a login whose --issuer differs from the
// server's only by a trailing slash fails with the exact --issuer to use.
func TestIssuerTrailingSlashHint(t *testing.T) {
	c := newCLI(t, oauthtest.Options{})
	code, _, stderr := c.run("login", "--no-browser", "--issuer", c.srv.Issuer+"/", "--client-id", oauthtest.ClientNative, "--ca-file", c.ca)
	if code != exitError || !strings.Contains(stderr, "trailing slash") || !strings.Contains(stderr, `"`+c.srv.Issuer+`"`) || !strings.Contains(stderr, "--issuer") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
}

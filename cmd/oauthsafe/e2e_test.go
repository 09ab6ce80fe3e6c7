package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/internal/testkit/keyringtest"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/tokenstore/keyring"
)

// cli runs the built oauthsafe binary against the real in-process server,
// with a private keyring and HOME/XDG directories of its own.
type cli struct {
	t   *testing.T
	bin string
	env []string
	srv *oauthtest.Server
	ca  string
	kr  *keyringtest.Daemon
	// seen collects everything the binary wrote to stderr, to check that
	// no token ever appears there.
	mu     sync.Mutex
	stderr []string
	// user is who the test browser signs in as; "" means alice.
	user string
}

// buildCLI compiles the binary once per test into a temporary directory.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "oauthsafe")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func newCLI(t *testing.T, opts oauthtest.Options) *cli {
	t.Helper()
	kr := keyringtest.New(t)
	srv, err := oauthtest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CACertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range kr.Env() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "BROWSER", envClientSecret, "DISPLAY", "WAYLAND_DISPLAY":
			continue
		}
		env = append(env, kv)
	}
	c := &cli{t: t, bin: buildCLI(t), env: env, srv: srv, ca: ca, kr: kr}
	t.Cleanup(func() { c.run("agent", "stop") })
	return c
}

// run runs the binary to completion and returns its exit code, stdout and stderr.
func (c *cli) run(args ...string) (int, string, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("oauthsafe %v: %v", args, err)
	}
	c.record(errb.String())
	return code, out.String(), errb.String()
}

func (c *cli) record(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stderr = append(c.stderr, s)
}

func (c *cli) allStderr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.stderr, "\n")
}

// login runs `oauthsafe login --no-browser` with a test browser: it reads
// the URL from stderr, completes the login at the server as alice and
// requests the callback URL on the loopback receiver, as a browser would.
func (c *cli) login(extra ...string) (int, string, string) {
	c.t.Helper()
	return c.loginArgs(append([]string{"login", "--no-browser", "--issuer", c.srv.Issuer, "--client-id", oauthtest.ClientNative,
		"--scope", "openid profile offline_access", "--ca-file", c.ca}, extra...)...)
}

// loginArgs is login with exactly the given arguments (a re-login from the
// saved profile passes no --issuer).
func (c *cli) loginArgs(args ...string) (int, string, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.env
	var out bytes.Buffer
	cmd.Stdout = &out
	pipe, err := cmd.StderrPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	var errb strings.Builder
	sc := bufio.NewScanner(pipe)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	browserDone := make(chan error, 1)
	started := false
	for sc.Scan() {
		line := sc.Text()
		errb.WriteString(line + "\n")
		// The URL is alone on its line: the whole line is the URL.
		if !started && strings.HasPrefix(line, c.srv.AuthURL+"?") {
			started = true
			go func(authURL string) { browserDone <- c.browse(ctx, authURL) }(line)
		}
	}
	err = cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	if !started {
		c.t.Fatalf("login printed no authorization URL alone on a line:\n%s", errb.String())
	}
	if err := <-browserDone; err != nil {
		c.t.Fatalf("test browser: %v", err)
	}
	c.record(errb.String())
	return code, out.String(), errb.String()
}

// browse is the test browser: sign in at the server, then follow the
// redirect to the loopback receiver and its result page.
func (c *cli) browse(ctx context.Context, authURL string) error {
	user := c.user
	if user == "" {
		user = "alice"
	}
	cb, err := c.srv.Login(ctx, authURL, user)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cb, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req) // follows the 303 to the result page
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "You are signed in") {
		return &browserError{res.StatusCode, string(body)}
	}
	if res.Request.URL.RawQuery != "" {
		return &browserError{res.StatusCode, "final URL keeps a query: " + res.Request.URL.String()}
	}
	return nil
}

type browserError struct {
	status int
	body   string
}

func (e *browserError) Error() string {
	return "result page " + http.StatusText(e.status) + ": " + e.body
}

func (c *cli) storedRefreshToken(subject string) (string, error) {
	key := tokenstore.Key(c.srv.Issuer, oauthtest.ClientNative, subject)
	rec, err := engine.LoadRecord(context.Background(), &keyring.Store{Service: keyringService}, key)
	if err != nil {
		return "", err
	}
	return rec.RefreshToken, nil
}

// userinfo proves a printed access token is real by calling the server.
func (c *cli) userinfo(token string) int {
	c.t.Helper()
	status, _ := c.userinfoCall(token)
	return status
}

// userinfoSubject returns the sub the server's userinfo endpoint names
// for token ("" when refused).
func (c *cli) userinfoSubject(token string) string {
	c.t.Helper()
	_, sub := c.userinfoCall(token)
	return sub
}

// userinfoCall asks the server's userinfo endpoint with token and returns
// the status and, on 200, the sub it names.
func (c *cli) userinfoCall(token string) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.srv.UserinfoURL, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := c.srv.HTTPClient().Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Sub string `json:"sub"`
	}
	if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&body) != nil {
		return res.StatusCode, ""
	}
	return res.StatusCode, body.Sub
}

func TestCLIEndToEnd(t *testing.T) {
	c := newCLI(t, oauthtest.Options{AccessTokenLifetime: 2 * time.Second})
	alice := oauthtest.Subject("alice")

	// login --no-browser
	code, stdout, stderr := c.login()
	if code != exitOK {
		t.Fatalf("login exit %d\n%s", code, stderr)
	}
	if stdout != "" {
		t.Fatalf("login wrote to stdout: %q", stdout)
	}
	for _, want := range []string{"Waiting for the callback on 127.0.0.1:", "(Ctrl-C to cancel)", "Logged in as " + strconv.Quote(alice)} {
		if !strings.Contains(stderr, want) {
			t.Errorf("login stderr lacks %q:\n%s", want, stderr)
		}
	}
	rt1, err := c.storedRefreshToken(alice)
	if err != nil {
		t.Fatalf("no refresh token in the keyring after login: %v", err)
	}

	// The profile: 0600 in a 0700 directory, no secret in it.
	cfgDir := filepath.Join(c.kr.Home, ".config", "oauthsafe")
	fi, err := os.Stat(filepath.Join(cfgDir, "default.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("profile mode %v, want 0600", fi.Mode().Perm())
	}
	if di, err := os.Stat(cfgDir); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("profile directory mode %v (%v), want 0700", di.Mode().Perm(), err)
	}
	profileBytes, _ := os.ReadFile(filepath.Join(cfgDir, "default.json"))
	if strings.Contains(string(profileBytes), rt1) {
		t.Fatal("the profile contains the refresh token")
	}

	// status
	code, stdout, stderr = c.run("status")
	if code != exitOK || stderr != "" {
		t.Fatalf("status exit %d stderr %q\n%s", code, stderr, stdout)
	}
	for _, want := range []string{c.srv.Issuer, alice, "Requested:  openid profile offline_access", "Granted:    openid profile offline_access", "stored in the OS keyring", "Agent:      not running"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "Expiry:") {
		t.Errorf("status shows an access token expiry with no agent holding one:\n%s", stdout)
	}

	// token, twice: each served from the keyring's refresh token, the
	// second after the first access token expired, with rotation persisted.
	refreshes := c.srv.TokenRequests("refresh_token")
	code, stdout, stderr = c.run("token")
	if code != exitOK {
		t.Fatalf("token exit %d\n%s", code, stderr)
	}
	at1 := checkTokenOutput(t, stdout)
	if c.userinfo(at1) != http.StatusOK {
		t.Fatal("the printed access token is not accepted by the server")
	}
	rt2, err := c.storedRefreshToken(alice)
	if err != nil || rt2 == rt1 {
		t.Fatalf("the rotated refresh token was not persisted (err %v, rotated %v)", err, rt2 != rt1)
	}
	time.Sleep(2500 * time.Millisecond) // past the first access token's expiry
	if c.userinfo(at1) == http.StatusOK {
		t.Log("note: the server still accepts the expired access token")
	}
	code, stdout, stderr = c.run("token")
	if code != exitOK {
		t.Fatalf("second token exit %d\n%s", code, stderr)
	}
	at2 := checkTokenOutput(t, stdout)
	if at2 == at1 {
		t.Fatal("the second token is the expired first one")
	}
	if c.userinfo(at2) != http.StatusOK {
		t.Fatal("the second access token is not accepted by the server")
	}
	if n := c.srv.TokenRequests("refresh_token") - refreshes; n != 2 {
		t.Fatalf("%d refresh_token requests for two `token` runs, want 2", n)
	}
	if c.srv.TokenRequests("authorization_code") != 1 {
		t.Fatal("`token` caused a new login")
	}
	rt3, err := c.storedRefreshToken(alice)
	if err != nil || rt3 == rt2 {
		t.Fatalf("second rotation not persisted (err %v)", err)
	}

	// logout: revoked at the server, deleted from the keyring.
	revocations := c.srv.Count(pathOf(t, c.srv.RevocationURL))
	code, stdout, stderr = c.run("logout")
	if code != exitOK || stdout != "" {
		t.Fatalf("logout exit %d stdout %q\n%s", code, stdout, stderr)
	}
	if c.srv.Count(pathOf(t, c.srv.RevocationURL)) != revocations+1 {
		t.Error("logout did not call the revocation endpoint")
	}
	if _, err := c.storedRefreshToken(alice); err == nil {
		t.Fatal("the refresh token is still in the keyring after logout")
	}

	// token after logout: exit 3, "run `oauthsafe login`", nothing on stdout.
	code, stdout, stderr = c.run("token")
	if code != exitLoginRequired || stdout != "" || !strings.Contains(stderr, "run `oauthsafe login`") {
		t.Fatalf("token after logout: exit %d stdout %q stderr %q, want 3 and the login hint", code, stdout, stderr)
	}
	if code, _, _ := c.run("status"); code != exitLoginRequired {
		t.Fatalf("status after logout: exit %d, want 3", code)
	}

	// No token ever appeared on stderr.
	all := c.allStderr()
	for name, tok := range map[string]string{"access token 1": at1, "access token 2": at2, "refresh token 1": rt1, "refresh token 2": rt2, "refresh token 3": rt3} {
		if strings.Contains(all, tok) {
			t.Errorf("%s appeared on stderr", name)
		}
	}
}

// checkTokenOutput checks that stdout is exactly one token and a newline.
func checkTokenOutput(t *testing.T, stdout string) string {
	t.Helper()
	tok, ok := strings.CutSuffix(stdout, "\n")
	if !ok || tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		t.Fatalf("stdout is not exactly one token line: %q", stdout)
	}
	return tok
}

func pathOf(t *testing.T, u string) string {
	t.Helper()
	i := strings.Index(u, "://")
	j := strings.Index(u[i+3:], "/")
	return u[i+3+j:]
}

func TestCLIInvalidRefreshTokenExits3(t *testing.T) {
	c := newCLI(t, oauthtest.Options{RevokeFamilyOnReuse: true})
	if code, _, stderr := c.login(); code != exitOK {
		t.Fatalf("login exit %d\n%s", code, stderr)
	}
	alice := oauthtest.Subject("alice")
	rt, err := c.storedRefreshToken(alice)
	if err != nil {
		t.Fatal(err)
	}
	// Someone else spends the refresh token (and reuse revokes the family):
	// the stored one is now dead at the server.
	ctxb := context.Background()
	nc, err := newClient(ctxb, &env{getenv: func(string) string { return "" }}, &profile{Issuer: c.srv.Issuer, ClientID: oauthtest.ClientNative, CAFile: c.ca, Scopes: []string{"openid", "profile", "offline_access"}})
	if err != nil {
		t.Fatal(err)
	}
	other := &tokenstore.Memory{}
	if err := engine.SaveRecord(ctxb, other, "k", &engine.Record{RefreshToken: rt, Subject: alice,
		Scopes: []string{"openid", "profile", "offline_access"}, Issuer: c.srv.Issuer, ClientID: oauthtest.ClientNative}); err != nil {
		t.Fatal(err)
	}
	src, err := nc.TokenSource(ctxb, oauthclient.TokenSourceConfig{Store: other, Key: "k"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Token(); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := c.run("token")
	if code != exitLoginRequired || stdout != "" || !strings.Contains(stderr, "run `oauthsafe login`") {
		t.Fatalf("exit %d stdout %q stderr %q, want 3", code, stdout, stderr)
	}
	if _, err := c.storedRefreshToken(alice); err == nil {
		t.Fatal("the dead refresh token is still in the keyring")
	}
}

func TestCLIClientCredentials(t *testing.T) {
	c := newCLI(t, oauthtest.Options{})
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(oauthtest.ServiceSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := c.run("token", "--client-credentials", "--issuer", c.srv.Issuer, "--client-id", oauthtest.ClientService,
		"--client-secret-file", secretFile, "--scope", oauthtest.ScopeAPIRead, "--ca-file", c.ca)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	at := checkTokenOutput(t, stdout)
	if strings.Contains(stderr, at) || strings.Contains(stderr, oauthtest.ServiceSecret) {
		t.Fatal("a token or the secret appeared on stderr")
	}
	if c.srv.TokenRequests("client_credentials") != 1 {
		t.Fatal("no client_credentials request")
	}
	// A secret is never taken from a flag value.
	if code, _, _ := c.run("token", "--client-credentials", "--issuer", c.srv.Issuer, "--client-id", oauthtest.ClientService,
		"--client-secret", oauthtest.ServiceSecret, "--ca-file", c.ca); code != exitUsage {
		t.Fatalf("--client-secret VALUE: exit %d, want 2 (no such flag)", code)
	}
	// A secret file others can read is refused.
	if err := os.Chmod(secretFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stdout, _ := c.run("token", "--client-credentials", "--issuer", c.srv.Issuer, "--client-id", oauthtest.ClientService,
		"--client-secret-file", secretFile, "--ca-file", c.ca); code != exitError || stdout != "" {
		t.Fatalf("world-readable secret file: exit %d stdout %q, want 1", code, stdout)
	}
}

// deviceLogin runs `oauthsafe login --device` with args, approving the
// user code at the server as alice, and returns stdout and stderr.
func (c *cli) deviceLogin(args ...string) (string, string) {
	t := c.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, append([]string{"login", "--device"}, args...)...)
	cmd.Env = c.env
	var out bytes.Buffer
	cmd.Stdout = &out
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var errb strings.Builder
	approved := make(chan error, 1)
	sc := bufio.NewScanner(pipe)
	wantCode := false
	for sc.Scan() {
		line := sc.Text()
		errb.WriteString(line + "\n")
		switch {
		case strings.Contains(line, "enter the code:"):
			wantCode = true
		case wantCode && strings.TrimSpace(line) != "":
			wantCode = false
			go func(code string) { approved <- c.srv.ApproveDevice(ctx, code, "alice") }(strings.TrimSpace(line))
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("login --device: %v\n%s", err, errb.String())
	}
	if err := <-approved; err != nil {
		t.Fatal(err)
	}
	c.record(errb.String())
	return out.String(), errb.String()
}

func TestCLIDeviceLogin(t *testing.T) {
	c := newCLI(t, oauthtest.Options{DevicePollInterval: time.Second})
	out, errb := c.deviceLogin("--profile", "tv", "--issuer", c.srv.Issuer, "--client-id", oauthtest.ClientDevice, "--ca-file", c.ca)
	if out != "" {
		t.Fatalf("login --device wrote to stdout: %q", out)
	}
	if !strings.Contains(errb, c.srv.DeviceVerificationURL) {
		t.Errorf("the verification URI was not shown:\n%s", errb)
	}
	// The deadline names its date and time zone.
	if !regexp.MustCompile(`until \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [A-Za-z0-9+-]+ `).MatchString(errb) {
		t.Errorf("the device deadline has no date or zone:\n%s", errb)
	}
	code, stdout, stderr := c.run("token", "--profile", "tv")
	if code != exitOK {
		t.Fatalf("token exit %d\n%s", code, stderr)
	}
	if c.userinfo(checkTokenOutput(t, stdout)) != http.StatusOK {
		t.Fatal("the access token from the device login is not accepted")
	}
}

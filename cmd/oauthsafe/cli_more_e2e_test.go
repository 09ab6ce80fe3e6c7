package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/tokenstore/keyring"
)

// gitServer is a local https git server that wants Basic auth with the
// password accepted by the OP's userinfo endpoint, then serves an empty
// repository (smart HTTP, protocol v0).
func gitServer(t *testing.T, c *cli) (*httptest.Server, *[]string) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || c.userinfo(pass) != http.StatusOK {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		seen = append(seen, user+":"+pass)
		mu.Unlock()
		if r.URL.Path != "/repo.git/info/refs" || r.URL.Query().Get("service") != "git-upload-pack" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
		pkt := func(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }
		io.WriteString(w, pkt("# service=git-upload-pack\n")+"0000"+
			pkt(strings.Repeat("0", 40)+" capabilities^{}\x00agent=test\n")+"0000")
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

func TestGitCredentialHelper(t *testing.T) {
	c := newCLI(t, oauthtest.Options{})
	mustLogin(t, c)
	gs, seen := gitServer(t, c)
	caFile := filepath.Join(t.TempDir(), "git-ca.pem")
	os.WriteFile(caFile, pemCert(gs.TLS.Certificates[0]), 0o600)
	git := c.gitRunner(t, "GIT_SSL_CAINFO="+caFile)
	host := strings.TrimPrefix(gs.URL, "https://")
	// The exact configuration line of the documentation.
	if _, e, err := git("", "config", "--global", "credential."+gs.URL+".helper", "!"+c.bin+" git-credential --allow "+gs.URL); err != nil {
		t.Fatal(err, e)
	}
	out, stderr, err := git("protocol=https\nhost="+host+"\n\n", "credential", "fill")
	if err != nil {
		t.Fatalf("git credential fill: %v\n%s", err, stderr)
	}
	attrs := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(l, "=")
		attrs[k] = v
	}
	tok := attrs["password"]
	if attrs["username"] != "oauth2" || tok == "" || c.userinfo(tok) != http.StatusOK {
		t.Fatalf("git credential fill answered %q", out)
	}
	// A real git command over https uses it.
	if _, stderr, err := git("", "ls-remote", gs.URL+"/repo.git"); err != nil {
		t.Fatalf("git ls-remote: %v\n%s", err, stderr)
	}
	if len(*seen) == 0 || (*seen)[0] != "oauth2:"+tok {
		t.Fatalf("the git server saw %q", *seen)
	}
	// The user name git sends is kept; expiry is given.
	out, _, _ = git("protocol=https\nhost="+host+"\nusername=alice\n\n", "credential", "fill")
	if !strings.Contains(out, "username=alice\n") || !strings.Contains(out, "password="+tok+"\n") {
		t.Fatalf("fill with a user name: %q", out)
	}
	code, stdout, _ := c.runIn("protocol=https\nhost="+host+"\n\n", "git-credential", "--allow", gs.URL, "get")
	if code != exitOK || !strings.Contains(stdout, "password_expiry_utc=") {
		t.Fatalf("get: exit %d %q", code, stdout)
	}
	// approve (store) is ignored; reject (erase) makes the agent forget.
	if _, stderr, err := git("protocol=https\nhost="+host+"\nusername=oauth2\npassword="+tok+"\n\n", "credential", "approve"); err != nil {
		t.Fatal(err, stderr)
	}
	before := c.srv.TokenRequests("refresh_token")
	if _, stderr, err := git("protocol=https\nhost="+host+"\nusername=oauth2\npassword="+tok+"\n\n", "credential", "reject"); err != nil {
		t.Fatal(err, stderr)
	}
	if _, st := c.statusJSON(); st["access_token_expiry"] != nil {
		t.Fatalf("after erase the agent still holds a token: %v", st)
	}
	out, _, _ = git("protocol=https\nhost="+host+"\n\n", "credential", "fill")
	if strings.Contains(out, "password="+tok+"\n") || c.srv.TokenRequests("refresh_token") != before+1 {
		t.Fatal("after erase, fill did not refresh")
	}
	// Never over http.
	if code, stdout, _ := c.runIn("protocol=http\nhost="+host+"\n\n", "git-credential", "--allow", gs.URL, "get"); code != exitOK || stdout != "" {
		t.Fatalf("http: exit %d answered %q", code, stdout)
	}
}

func pemCert(cert tls.Certificate) []byte {
	return []byte("-----BEGIN CERTIFICATE-----\n" + base64.StdEncoding.EncodeToString(cert.Certificate[0]) + "\n-----END CERTIFICATE-----\n")
}

func TestLoginChecksStoreFirst(t *testing.T) {
	c := newCLI(t, oauthtest.Options{})
	authPath := pathOf(t, c.srv.AuthURL)
	good := append([]string{}, c.env...)
	c.setenv("DBUS_SESSION_BUS_ADDRESS=unix:path=" + filepath.Join(t.TempDir(), "no-bus"))
	code, stdout, stderr := c.run("login", "--no-browser", "--issuer", c.srv.Issuer, "--client-id", oauthtest.ClientNative, "--ca-file", c.ca)
	if code != exitError || stdout != "" {
		t.Fatalf("login without a keyring: exit %d stdout %q", code, stdout)
	}
	if !strings.Contains(stderr, "--store file") || strings.Contains(stderr, c.srv.AuthURL) {
		t.Fatalf("login without a keyring: no advice, or it showed the URL:\n%s", stderr)
	}
	if n := c.srv.Count(authPath); n != 0 {
		t.Fatalf("%d requests reached the authorization endpoint", n)
	}
	// --store file works end to end, with the agent and without D-Bus.
	c.setenv(envFilePassphrase + "=correct horse battery staple")
	mustLogin(t, c, "--store", "file")
	rt, err := func() (string, error) {
		c.env, good = good, c.env
		defer func() { c.env, good = good, c.env }()
		return c.storedRefreshToken(oauthtest.Subject("alice"))
	}()
	if err == nil {
		t.Fatalf("--store file put the refresh token in the keyring (%d bytes)", len(rt))
	}
	file := filepath.Join(c.kr.Home, ".config", "oauthsafe", "tokens.enc")
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("encrypted file: %v %v", fi, err)
	}
	tok := c.tokens(3)[0]
	if c.userinfo(tok) != http.StatusOK {
		t.Fatal("token from the file store not accepted")
	}
	if code, st := c.statusJSON(); code != exitOK || st["store"] != "file" || st["refresh_token"] != "present" {
		t.Fatalf("status: %d %v", code, st)
	}
	// Without the passphrase and no terminal: the agent cannot open the
	// file either; the error says what to set.
	c.run("agent", "stop")
	c.setenv(envFilePassphrase + "=")
	if code, stdout, stderr := c.run("token"); code != exitError || stdout != "" || !strings.Contains(stderr, envFilePassphrase) {
		t.Fatalf("no passphrase: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	c.setenv(envFilePassphrase + "=wrong")
	if code, _, stderr := c.run("login", "--no-browser", "--store", "file"); code != exitError || !strings.Contains(stderr, "passphrase") {
		t.Fatalf("wrong passphrase at login: exit %d %s", code, stderr)
	}
	if n := c.srv.Count(authPath); n != 1 {
		t.Fatalf("%d authorization requests, want the one login's", n)
	}
}

func TestStatusJSONAndExitCodes(t *testing.T) {
	// The server withholds "profile": the grant is narrower than the request.
	c := newCLI(t, oauthtest.Options{WithheldScopes: []string{"profile"}})
	var authQuery url.Values
	c.srv.SetHook(func(r *http.Request) {
		if r.URL.Path == pathOf(t, c.srv.AuthURL) && r.URL.Query().Get("client_id") != "" {
			authQuery = r.URL.Query()
		}
	})
	mustLogin(t, c, "--resource", "https://api.example/", "--resource", "https://other.example/x")
	if got := authQuery["resource"]; len(got) != 2 || got[0] != "https://api.example/" {
		t.Fatalf("authorization request resource = %q", got)
	}
	code, st := c.statusJSON()
	if code != exitOK {
		t.Fatalf("status --json exit %d", code)
	}
	want := map[string]any{"profile": "default", "issuer": c.srv.Issuer, "client_id": oauthtest.ClientNative,
		"subject": oauthtest.Subject("alice"), "store": "keyring", "refresh_token": "present", "agent": "not running"}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("status %s = %v, want %v", k, st[k], v)
		}
	}
	for _, k := range []string{"scopes_requested", "scopes_granted", "resources"} {
		if _, ok := st[k].([]any); !ok {
			t.Errorf("status %s is not a list: %v", k, st[k])
		}
	}
	if len(st["resources"].([]any)) != 2 || st["access_token_expiry"] != nil {
		t.Errorf("status: %v", st)
	}
	// login kept a version 2 record: subject, the scopes granted, issuer
	// and client.
	ctxb := context.Background()
	alice := oauthtest.Subject("alice")
	key := tokenstore.Key(c.srv.Issuer, oauthtest.ClientNative, alice)
	ks := &keyring.Store{Service: keyringService}
	rec, err := engine.LoadRecord(ctxb, ks, key)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Subject != alice || strings.Join(rec.Scopes, " ") != "openid offline_access" || rec.Issuer != c.srv.Issuer || rec.ClientID != oauthtest.ClientNative || rec.RefreshToken == "" {
		t.Fatalf("stored record: %v", rec)
	}
	// Requested scopes come from the profile, granted ones from the record.
	scopes := func(st map[string]any, k string) string {
		var out []string
		l, _ := st[k].([]any) // absent when empty
		for _, v := range l {
			out = append(out, v.(string))
		}
		return strings.Join(out, " ")
	}
	if got := scopes(st, "scopes_requested"); got != "openid profile offline_access" {
		t.Errorf("scopes_requested = %q", got)
	}
	if got := scopes(st, "scopes_granted"); got != "openid offline_access" {
		t.Errorf("scopes_granted = %q, want the grant (without the withheld profile)", got)
	}
	code, stdout, _ := c.run("status")
	if code != exitOK || !strings.Contains(stdout, "Requested:  openid profile offline_access\n") || !strings.Contains(stdout, "Granted:    openid offline_access\n") {
		t.Errorf("status: exit %d\n%s", code, stdout)
	}
	// Discovery is cached: token makes no discovery request.
	discovery := func() int {
		return c.srv.Count("/.well-known/openid-configuration") + c.srv.Count("/.well-known/oauth-authorization-server")
	}
	disco := discovery()
	code, stdout, _ = c.run("token")
	tok := strings.TrimSpace(stdout)
	if code != exitOK || discovery() != disco {
		t.Fatalf("token: exit %d, or it ran discovery again", code)
	}
	if _, st = c.statusJSON(); st["agent"] != "running" || st["access_token_expiry"] == nil || scopes(st, "scopes_granted") != "openid offline_access" {
		t.Fatalf("status after token: %v", st)
	}
	raw, _ := json.Marshal(st)
	if strings.Contains(string(raw), tok) {
		t.Fatal("status shows the token")
	}
	// logout: consistent status, exit 3.
	if code, _, stderr := c.run("logout"); code != exitOK {
		t.Fatalf("logout: %d %s", code, stderr)
	}
	code, st = c.statusJSON()
	if code != exitLoginRequired || st["refresh_token"] != "absent" || st["access_token_expiry"] != nil || scopes(st, "scopes_granted") != "" {
		t.Fatalf("status after logout: exit %d %v", code, st)
	}
	if _, stdout, _ := c.run("status"); !strings.Contains(stdout, "Granted:    (none") || !strings.Contains(stdout, "Refresh:    none") {
		t.Errorf("status after logout:\n%s", stdout)
	}
	if code, stdout, _ := c.run("token"); code != exitLoginRequired || stdout != "" {
		t.Fatalf("token after logout: exit %d", code)
	}
	// A record of an older version (no subject, no grant) is no login.
	if err := ks.Update(ctxb, key, func(ctx context.Context, tx tokenstore.Tx) error {
		return tx.Put(ctx, []byte(`{"v":1,"refresh_token":"old-refresh-token"}`))
	}); err != nil {
		t.Fatal(err)
	}
	if code, st := c.statusJSON(); code != exitLoginRequired || st["refresh_token"] != "absent" {
		t.Errorf("status with a v1 record: exit %d %v", code, st)
	}
	before := c.srv.TokenRequests("refresh_token")
	for _, args := range [][]string{{"token", "--no-agent"}, {"token"}} {
		if code, stdout, stderr := c.run(args...); code != exitLoginRequired || stdout != "" || !strings.Contains(stderr, "older version") {
			t.Errorf("%v with a v1 record: exit %d stdout %q stderr %q", args, code, stdout, stderr)
		}
	}
	if n := c.srv.TokenRequests("refresh_token") - before; n != 0 {
		t.Errorf("a v1 record was sent to the server (%d refresh requests)", n)
	}
	// Usage errors: exit 2, one line that ends with the hint.
	for _, args := range [][]string{{"tokn"}, {"token", "--bogus"}, {"login", "--store", "floppy"}, {"status", "extra"}, {"git-credential"}, {"agent", "restart"}} {
		code, stdout, stderr := c.run(args...)
		if code != exitUsage || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "--help") {
			t.Errorf("%v: exit %d stderr %q, want 2 and one line and a hint", args, code, stderr)
		}
	}
	// --version.
	if code, stdout, _ := c.run("--version"); code != exitOK || !strings.HasPrefix(stdout, "oauthsafe ") {
		t.Errorf("--version: %d %q", code, stdout)
	}
}

// startLogin starts `login --no-browser` and returns the process and the
// authorization URL it printed.
func (c *cli) startLogin(args ...string) (*exec.Cmd, string, *strings.Builder, chan struct{}) {
	c.t.Helper()
	cmd := exec.Command(c.bin, append([]string{"login", "--no-browser", "--issuer", c.srv.Issuer, "--client-id", oauthtest.ClientNative,
		"--scope", "openid offline_access", "--ca-file", c.ca}, args...)...)
	cmd.Env = c.env
	pipe, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	var errb strings.Builder
	urlCh := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			errb.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), c.srv.AuthURL+"?") {
				urlCh <- sc.Text()
			}
		}
	}()
	select {
	case u := <-urlCh:
		return cmd, u, &errb, done
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		c.t.Fatal("no URL printed")
	}
	return nil, "", nil, nil
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestCLIMessages(t *testing.T) {
	c := newCLI(t, oauthtest.Options{})
	// Ctrl-C and SIGTERM while waiting for the browser: exit 130.
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		cmd, _, errb, done := c.startLogin()
		cmd.Process.Signal(sig)
		<-done // all of stderr is read before Wait closes the pipe
		err := cmd.Wait()
		if exitCode(err) != exitInterrupted || !strings.Contains(errb.String(), "interrupted") {
			t.Errorf("%v: exit %d\n%s", sig, exitCode(err), errb.String())
		}
	}
	// An authorization error at the loopback receiver ends the wait at once,
	// with the server's cleaned description.
	cmd, authURL, errb, done := c.startLogin("--timeout", "5m")
	u, _ := url.Parse(authURL)
	q := url.Values{"error": {"invalid_client"}, "error_description": {"unknown client \x1b[31mred\u202e"}, "state": {u.Query().Get("state")}, "iss": {c.srv.Issuer}}
	start := time.Now()
	res, err := http.Get(u.Query().Get("redirect_uri") + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	<-done // all of stderr is read before Wait closes the pipe
	err = cmd.Wait()
	if exitCode(err) != exitError || time.Since(start) > 20*time.Second {
		t.Fatalf("invalid_client: exit %d after %v\n%s", exitCode(err), time.Since(start), errb.String())
	}
	if s := errb.String(); !strings.Contains(s, "invalid_client") || strings.Count(s, "unknown client [31mred") != 1 || strings.ContainsAny(s, "\x1b\u202e") || !strings.Contains(s, "--client-id") {
		t.Fatalf("invalid_client message:\n%q", s)
	}
	// Timeout: says what timed out and what to do.
	code, _, stderr := c.run("login", "--no-browser", "--issuer", c.srv.Issuer, "--client-id", oauthtest.ClientNative, "--ca-file", c.ca, "--timeout", "1s")
	if code != exitError || !strings.Contains(stderr, "timed out") || !strings.Contains(stderr, "--timeout") {
		t.Fatalf("timeout: exit %d\n%s", code, stderr)
	}
	// An unknown CA: suggests --ca-file.
	code, _, stderr = c.run("login", "--no-browser", "--issuer", c.srv.Issuer, "--client-id", oauthtest.ClientNative)
	if code != exitError || !strings.Contains(stderr, "--ca-file") {
		t.Fatalf("unknown CA: exit %d\n%s", code, stderr)
	}

	// A token-endpoint error during `token`, with a hostile description:
	// stderr shows the description, cleaned of C0 and C1 controls, DEL and
	// bidi controls, with and without the agent.
	mustLogin(t, c)
	const hostile = "consent \x1b[31mrevoked\a by\u0085 admin\u009b2J \u202eevil\u202c\u2066x\u2069\x7f;\r\nsee portal"
	const cleaned = "consent [31mrevoked by admin2J evilx;  see portal"
	var errCode atomic.Value
	c.srv.SetInterceptor(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != pathOf(t, c.srv.TokenURL) || r.FormValue("grant_type") != "refresh_token" {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": errCode.Load().(string), "error_description": hostile})
		return true
	})
	defer c.srv.SetInterceptor(nil)
	errCode.Store("invalid_scope")
	for _, args := range [][]string{{"token", "--no-agent"}, {"token"}} {
		code, stdout, stderr := c.run(args...)
		if code != exitError || stdout != "" {
			t.Fatalf("%v with invalid_scope: exit %d stdout %q", args, code, stdout)
		}
		if !strings.Contains(stderr, "invalid_scope") || !strings.Contains(stderr, cleaned) || !strings.Contains(stderr, "--scope") {
			t.Errorf("%v: the cleaned description or the hint is missing:\n%q", args, stderr)
		}
		if err := terminalSafe(stderr); err != nil {
			t.Errorf("%v: %v in %q", args, err, stderr)
		}
	}
	// The agent backs off after that failure (no request until it may
	// retry); a fresh agent asks again.
	c.run("agent", "stop")
	errCode.Store("invalid_grant")
	code, stdout, stderr := c.run("token")
	if code != exitLoginRequired || stdout != "" || !strings.Contains(stderr, cleaned) || !strings.Contains(stderr, "oauthsafe login") {
		t.Fatalf("token with invalid_grant: exit %d stdout %q\n%q", code, stdout, stderr)
	}
	if err := terminalSafe(stderr); err != nil {
		t.Errorf("invalid_grant: %v in %q", err, stderr)
	}
	if code, st := c.statusJSON(); code != exitLoginRequired || st["refresh_token"] != "absent" {
		t.Errorf("after invalid_grant: status exit %d %v", code, st)
	}
}

// terminalSafe is an oracle independent of safetext: s must be valid UTF-8
// with no C0 control but newline, no DEL, no C1 control and no bidi
// control or implicit mark.
func terminalSafe(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("invalid UTF-8")
	}
	for _, r := range s {
		switch {
		case r == '\n':
		case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f,
			r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069,
			r == 0x200e, r == 0x200f, r == 0x061c, r == 0x2028, r == 0x2029:
			return fmt.Errorf("control character %U", r)
		}
	}
	return nil
}

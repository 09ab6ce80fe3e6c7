package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthtest"
)

// These tests drive the built binary, its agent, kubectl's and git's
// interfaces against the real in-process server and a real keyring.

// setenv returns c's environment with key=value (replacing any).
func (c *cli) setenv(kv ...string) {
	for _, pair := range kv {
		k, _, _ := strings.Cut(pair, "=")
		out := c.env[:0:0]
		for _, e := range c.env {
			if !strings.HasPrefix(e, k+"=") {
				out = append(out, e)
			}
		}
		c.env = append(out, pair)
	}
}

func (c *cli) getenv(k string) string {
	for _, e := range c.env {
		if v, ok := strings.CutPrefix(e, k+"="); ok {
			return v
		}
	}
	return ""
}

// runIn runs the binary with stdin.
func (c *cli) runIn(stdin string, args ...string) (int, string, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.env
	cmd.Stdin = strings.NewReader(stdin)
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

// tokens runs n `oauthsafe token` processes at once and returns their tokens.
func (c *cli) tokens(n int, args ...string) []string {
	c.t.Helper()
	out := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, stdout, stderr := c.run(append([]string{"token"}, args...)...)
			if code != exitOK {
				errs <- stderr
				return
			}
			out[i] = strings.TrimSuffix(stdout, "\n")
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		c.t.Fatalf("token failed: %s", e)
	}
	return out
}

func (c *cli) statusJSON() (int, map[string]any) {
	c.t.Helper()
	code, stdout, stderr := c.run("status", "--json")
	var m map[string]any
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		c.t.Fatalf("status --json: %v\nstdout %q\nstderr %s", err, stdout, stderr)
	}
	return code, m
}

func mustLogin(t *testing.T, c *cli, extra ...string) {
	t.Helper()
	if code, _, stderr := c.login(extra...); code != exitOK {
		t.Fatalf("login exit %d\n%s", code, stderr)
	}
}

func TestAgentSharesOneRefresh(t *testing.T) {
	const lifetime = 10 * time.Second
	c := newCLI(t, oauthtest.Options{AccessTokenLifetime: lifetime})
	mustLogin(t, c)
	refreshes := func() int { return c.srv.TokenRequests("refresh_token") }

	// Cold: no agent runs; 20 processes race to start one, one refresh.
	before := refreshes()
	cold := c.tokens(20)
	if n := refreshes() - before; n != 1 {
		t.Fatalf("cold round: %d refresh requests, want 1", n)
	}
	for _, tok := range cold[1:] {
		if tok != cold[0] {
			t.Fatal("cold round: processes printed different tokens")
		}
	}
	// After expiry: one refresh for 20 processes, all printing the new token.
	time.Sleep(lifetime + 500*time.Millisecond)
	before = refreshes()
	hot := c.tokens(20)
	if n := refreshes() - before; n != 1 {
		t.Fatalf("after expiry: %d refresh requests for 20 processes, want 1", n)
	}
	for _, tok := range hot {
		if tok != hot[0] || tok == cold[0] {
			t.Fatal("after expiry: processes printed different or expired tokens")
		}
	}
	if c.userinfo(hot[0]) != http.StatusOK {
		t.Fatal("the shared token is not accepted by the server")
	}
	// Before expiry: no request at all, not even discovery.
	c.srv.Reset()
	warm := c.tokens(20)
	if n := refreshes(); n != 0 {
		t.Fatalf("warm round: %d refresh requests, want 0", n)
	}
	if counts := c.srv.Counts(); len(counts) != 0 {
		t.Fatalf("warm round made requests: %v", counts)
	}
	for _, tok := range warm {
		if tok != hot[0] {
			t.Fatal("warm round: a process printed another token")
		}
	}
	// status: the agent and its token's expiry, never the token.
	code, st := c.statusJSON()
	if code != exitOK || st["agent"] != "running" || st["access_token_expiry"] == nil {
		t.Fatalf("status --json: exit %d %v", code, st)
	}
	if code, stdout, _ := c.run("agent", "status"); code != exitOK || !strings.Contains(stdout, "running") || !strings.Contains(stdout, "default: access token valid until") || strings.Contains(stdout, hot[0]) {
		t.Fatalf("agent status: %d %q", code, stdout)
	}
	// --no-agent and OAUTHSAFE_NO_AGENT refresh directly.
	before = refreshes()
	if code, stdout, _ := c.run("token", "--no-agent"); code != exitOK || strings.TrimSpace(stdout) == hot[0] {
		t.Fatalf("--no-agent: exit %d, or the agent's token", code)
	}
	c.setenv(envNoAgent + "=1")
	if code, stdout, _ := c.run("token"); code != exitOK || strings.TrimSpace(stdout) == hot[0] {
		t.Fatalf("%s=1: exit %d, or the agent's token", envNoAgent, code)
	}
	if n := refreshes() - before; n != 2 {
		t.Fatalf("without the agent: %d refreshes for 2 calls, want 2", n)
	}
}

// TestAgentRefusesOtherUsers runs a client as another uid (65534) against
// the agent's socket, with the directory opened up on purpose so that only
// the agent's own per-connection uid check stands in the way.
func TestAgentRefusesOtherUsers(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a client as another uid; TestPeerUIDSocketPair covers the check")
	}
	c := newCLI(t, oauthtest.Options{})
	mustLogin(t, c)
	code, stdout, _ := c.run("token")
	if code != exitOK {
		t.Fatal("token failed")
	}
	tok := strings.TrimSpace(stdout)
	runDir := c.getenv("XDG_RUNTIME_DIR")
	dir := filepath.Join(runDir, "oauthsafe")
	sock := filepath.Join(dir, "agent.sock")
	// Open the way to the socket for everyone.
	for p := dir; strings.HasPrefix(p, c.kr.Dir); p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	// A client does not use an agent whose directory others can enter.
	if code, _, _ := c.run("agent", "status"); code != exitError {
		t.Errorf("agent status with a 0711 agent directory: exit %d, want 1", code)
	}
	restore := func() {
		for p := dir; strings.HasPrefix(p, c.kr.Dir); p = filepath.Dir(p) {
			os.Chmod(p, 0o700)
		}
		os.Chmod(sock, 0o600)
	}
	defer restore()
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	// The other user's client: this test binary, copied where uid 65534
	// can run it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	binDir, err := os.MkdirTemp("", "oauthsafe-other-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(binDir)
	os.Chmod(binDir, 0o755)
	other := filepath.Join(binDir, "client.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cfgDir := filepath.Join(c.kr.Home, ".config", "oauthsafe")
	cmd := exec.Command(other, "-test.run=^TestAgentDialHelper$", "-test.v")
	cmd.Env = []string{"OAUTHSAFE_TEST_DIAL=" + sock, "OAUTHSAFE_TEST_CONFIG_DIR=" + cfgDir, "HOME=/"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as uid 65534: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "CONNECTED") {
		t.Fatalf("the other user could not even connect (the test proves nothing):\n%s", out)
	}
	if strings.Contains(string(out), tok) || strings.Contains(string(out), "access_token") || !strings.Contains(string(out), "ANSWER 0 bytes") {
		t.Fatalf("the agent answered another user:\n%s", out)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
	if !strings.Contains(string(log), "refused a connection from uid 65534") {
		t.Errorf("the agent did not log the refusal:\n%s", log)
	}
	// The agent still serves its own user.
	restore()
	if code, stdout, _ := c.run("token"); code != exitOK || strings.TrimSpace(stdout) != tok {
		t.Fatal("the agent stopped serving its user")
	}
}

// TestAgentDialHelper is the other user's client of TestAgentRefusesOtherUsers.
func TestAgentDialHelper(t *testing.T) {
	sock := os.Getenv("OAUTHSAFE_TEST_DIAL")
	if sock == "" {
		t.Skip("helper process only")
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	t.Logf("CONNECTED as uid %d", os.Getuid())
	req, _ := json.Marshal(agentRequest{V: 1, Op: "token", Profile: defaultProfile, ConfigDir: os.Getenv("OAUTHSAFE_TEST_CONFIG_DIR")})
	conn.Write(append(req, '\n'))
	conn.(*net.UnixConn).CloseWrite()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, _ := io.ReadAll(conn)
	t.Logf("ANSWER %d bytes: %s", len(b), b)
}

// TestPeerUIDSocketPair checks the credential lookup itself on a socket pair.
func TestPeerUIDSocketPair(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[0]), "a")
	defer f.Close()
	defer syscall.Close(fds[1])
	fc, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	uid, err := peerUID(fc.(*net.UnixConn))
	if err != nil || uid != os.Getuid() {
		t.Fatalf("peerUID = %d, %v; want %d", uid, err, os.Getuid())
	}
}

func TestAgentNeverWritesTokens(t *testing.T) {
	c := newCLI(t, oauthtest.Options{AccessTokenLifetime: 3 * time.Second})
	tmp := t.TempDir()
	c.setenv("TMPDIR=" + tmp)
	mustLogin(t, c)
	seen := map[string]bool{}
	add := func(s string) {
		if s = strings.TrimSpace(s); len(s) > 16 {
			seen[s] = true
		}
	}
	for range 2 {
		for _, tok := range c.tokens(3) {
			add(tok)
		}
		_, out, _ := c.run("token", "--output", "json")
		var tj tokenJSON
		json.Unmarshal([]byte(out), &tj)
		add(tj.AccessToken)
		_, out, _ = c.run("token", "--output", "exec-credential")
		var ec execCredential
		json.Unmarshal([]byte(out), &ec)
		add(ec.Status.Token)
		_, out, _ = c.runIn("protocol=https\nhost=git.example\n\n", "git-credential", "--allow", "https://git.example", "get")
		for _, l := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(l, "password="); ok {
				add(v)
			}
		}
		c.run("status")
		c.run("agent", "status")
		time.Sleep(3500 * time.Millisecond) // a refresh on the next round
	}
	if len(seen) < 2 {
		t.Fatalf("only %d distinct access tokens seen", len(seen))
	}
	c.run("logout")
	c.run("agent", "stop")
	for _, root := range []string{c.kr.Dir, tmp} {
		filepath.Walk(root, func(path string, fi os.FileInfo, err error) error {
			if err != nil || !fi.Mode().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil
			}
			for tok := range seen {
				if bytes.Contains(b, []byte(tok)) {
					t.Errorf("an access token is on disk in %s", path)
				}
			}
			return nil
		})
	}
	if !strings.Contains(c.getenv("XDG_RUNTIME_DIR"), c.kr.Dir) || !strings.Contains(c.getenv("HOME"), c.kr.Dir) {
		t.Fatal("HOME or XDG_RUNTIME_DIR is outside the scanned directory")
	}
}

func TestExecCredentialOutput(t *testing.T) {
	c := newCLI(t, oauthtest.Options{})
	mustLogin(t, c)
	// k8s.io/client-go/pkg/apis/clientauthentication/v1.ExecCredential,
	// field names as in the Kubernetes type.
	type k8sStatus struct {
		ExpirationTimestamp   *time.Time `json:"expirationTimestamp,omitempty"`
		Token                 string     `json:"token,omitempty"`
		ClientCertificateData string     `json:"clientCertificateData,omitempty"`
		ClientKeyData         string     `json:"clientKeyData,omitempty"`
	}
	type k8sExecCredential struct {
		APIVersion string          `json:"apiVersion"`
		Kind       string          `json:"kind"`
		Spec       json.RawMessage `json:"spec,omitempty"`
		Status     *k8sStatus      `json:"status,omitempty"`
	}
	for _, tc := range []struct{ info, want string }{
		{"", "client.authentication.k8s.io/v1"},
		{`{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}`, "client.authentication.k8s.io/v1"},
		{`{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{"interactive":true}}`, "client.authentication.k8s.io/v1beta1"},
	} {
		c.setenv(envExecInfo + "=" + tc.info)
		code, stdout, stderr := c.run("token", "--output", "exec-credential")
		if code != exitOK {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		dec := json.NewDecoder(strings.NewReader(stdout))
		dec.DisallowUnknownFields()
		var ec k8sExecCredential
		if err := dec.Decode(&ec); err != nil {
			t.Fatalf("not a Kubernetes ExecCredential: %v\n%s", err, stdout)
		}
		var raw struct {
			Status map[string]any `json:"status"`
		}
		json.Unmarshal([]byte(stdout), &raw)
		ts, _ := raw.Status["expirationTimestamp"].(string)
		if _, err := time.Parse(time.RFC3339, ts); err != nil {
			t.Fatalf("expirationTimestamp %q is not RFC 3339", ts)
		}
		if ec.APIVersion != tc.want || ec.Kind != "ExecCredential" || ec.Status == nil || ec.Status.Token == "" ||
			ec.Status.ExpirationTimestamp == nil || !ec.Status.ExpirationTimestamp.After(time.Now()) {
			t.Fatalf("ExecCredential %+v", ec)
		}
		if c.userinfo(ec.Status.Token) != http.StatusOK {
			t.Fatal("status.token is not accepted by the server")
		}
	}
	c.setenv(envExecInfo + `={"apiVersion":"client.authentication.k8s.io/v9"}`)
	if code, stdout, stderr := c.run("token", "--output", "exec-credential"); code != exitError || stdout != "" || !strings.Contains(stderr, "v9") {
		t.Fatalf("unknown apiVersion: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	c.setenv(envExecInfo + "=")
	// json output: token, type, expiry.
	code, stdout, _ := c.run("token", "--output", "json")
	var tj map[string]string
	if code != exitOK || json.Unmarshal([]byte(stdout), &tj) != nil || tj["access_token"] == "" || tj["token_type"] != "Bearer" {
		t.Fatalf("--output json: exit %d %q", code, stdout)
	}
	if _, err := time.Parse(time.RFC3339, tj["expiry"]); err != nil {
		t.Fatalf("--output json expiry %q", tj["expiry"])
	}
	if code, stdout, stderr := c.run("token", "--output", "yaml"); code != exitUsage || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "--help") {
		t.Fatalf("--output yaml: exit %d stdout %q stderr %q, want 2 and one line with a hint", code, stdout, stderr)
	}
}

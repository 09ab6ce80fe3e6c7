package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/oauthsafe/oauthsafe/oauthtest"
)

// TestOneLockWhateverTheEnvironment (S23, S29): processes of one user whose
// environments differ as a terminal's, a cron job's and a systemd unit's do
// (XDG_RUNTIME_DIR set or not and elsewhere, another TMPDIR, another HOME)
// refresh one keyring record at the same time, each `oauthsafe token
// --no-agent` a real process with the real keyring, against the real
// provider with rotation and reuse detection that revokes the grant.
// They take one lock: every refresh token is presented exactly once (one
// token request per rotation), and every process gets a token.
func TestOneLockWhateverTheEnvironment(t *testing.T) {
	c := newCLI(t, oauthtest.Options{RevokeFamilyOnReuse: true})
	mustLogin(t, c)
	c.run("agent", "stop")
	var mu sync.Mutex
	presented := map[string]int{}
	requests := 0
	tokenPath := mustURL(c.srv.TokenURL).Path
	c.srv.SetHook(func(r *http.Request) {
		if r.URL.Path != tokenPath || r.ParseForm() != nil || r.PostForm.Get("grant_type") != "refresh_token" {
			return
		}
		mu.Lock()
		presented[r.PostForm.Get("refresh_token")]++
		requests++
		mu.Unlock()
	})
	dir := func() string {
		d, err := os.MkdirTemp(c.kr.Dir, "env-")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// The profile directory (XDG_CONFIG_HOME) and the session bus are the
	// same for all: one user, one login, one keyring.
	envs := map[string][]string{
		"terminal": c.env,
		"cron": append(withoutEnv(c.env, "XDG_RUNTIME_DIR", "TMPDIR", "HOME"),
			"TMPDIR="+dir(), "HOME="+dir()),
		"systemd": append(withoutEnv(c.env, "XDG_RUNTIME_DIR", "TMPDIR", "HOME"),
			"XDG_RUNTIME_DIR="+dir(), "HOME="+dir()),
		"other": append(withoutEnv(c.env, "XDG_RUNTIME_DIR", "TMPDIR", "HOME"),
			"TMPDIR="+dir(), "XDG_RUNTIME_DIR="+dir(), "HOME="+dir()),
	}
	const rounds = 5
	for round := range rounds {
		var wg sync.WaitGroup
		fails := make(chan string, len(envs))
		for name, env := range envs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := &cli{t: c.t, bin: c.bin, env: env, srv: c.srv}
				code, stdout, stderr := p.run("token", "--no-agent")
				if code != exitOK || strings.TrimSpace(stdout) == "" {
					fails <- fmt.Sprintf("%s: exit %d: %s", name, code, stderr)
				}
			}()
		}
		wg.Wait()
		close(fails)
		mu.Lock()
		for _, n := range presented {
			if n != 1 {
				t.Errorf("round %d: a refresh token was presented %d times: processes with different environments took different locks", round, n)
			}
		}
		mu.Unlock()
		for f := range fails {
			t.Errorf("round %d: %s", round, f)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := rounds * len(envs); requests != want || len(presented) != want {
		t.Fatalf("%d refresh requests with %d distinct refresh tokens for %d processes; want one each", requests, len(presented), want)
	}
}

// Package storetest checks a tokenstore.Store's transaction promise with
// real processes: N OS processes (this test binary, re-executed) times M
// goroutines refresh one key for a few hundred rotations against a token
// endpoint that rotates and counts, and a process killed (SIGKILL) inside
// a transaction must release it. Store packages call CrossProcess from a
// test and Child from a second test that the children run.
package storetest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/tokenstore"
	"golang.org/x/oauth2"
)

const (
	envMode       = "OAUTHSAFE_STORETEST_MODE" // "refresh" or "hold"
	envURL        = "OAUTHSAFE_STORETEST_URL"
	envGoroutines = "OAUTHSAFE_STORETEST_GOROUTINES"
	envRotations  = "OAUTHSAFE_STORETEST_ROTATIONS"
)

// Key is the store key the harness uses.
const Key = "storetest"

// Config describes one run of CrossProcess.
type Config struct {
	// Open returns the store under test. It runs in the parent and in
	// every child; children see Env.
	Open func(t testing.TB) tokenstore.Store
	// Env is added to the children's environment (after os.Environ()).
	Env []string
	// ChildTest names the test function that calls Child.
	ChildTest string
	// Procs, Goroutines and Rotations size the run; zero means 3, 4, 300.
	Procs, Goroutines, Rotations int
}

// server is a token endpoint that rotates the refresh token on every
// refresh and answers invalid_grant to any other refresh token (reuse
// detection), counting every refresh token it receives.
type server struct {
	mu       sync.Mutex
	current  string
	n        int
	uses     map[string]int
	requests int
}

func newServer() *server {
	return &server{current: "rt-0", uses: map[string]int{}}
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/count" {
		s.mu.Lock()
		fmt.Fprint(w, s.n)
		s.mu.Unlock()
		return
	}
	rt := r.PostFormValue("refresh_token")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	s.uses[rt]++
	w.Header().Set("Content-Type", "application/json")
	if rt != s.current {
		w.WriteHeader(400)
		io.WriteString(w, `{"error":"invalid_grant"}`)
		return
	}
	s.n++
	s.current = "rt-" + strconv.Itoa(s.n)
	json.NewEncoder(w).Encode(map[string]any{"access_token": "at-" + strconv.Itoa(s.n),
		"refresh_token": s.current, "token_type": "Bearer", "expires_in": 3600})
}

// Fetch is a engine.FetchFunc for the harness's token endpoint.
func Fetch(endpoint string) engine.FetchFunc {
	return func(ctx context.Context, r *engine.Refresh) (*engine.Result, error) {
		if r.Record == nil {
			return nil, tokenstore.ErrLoginRequired
		}
		req, err := http.NewRequestWithContext(ctx, "POST", endpoint+"/token",
			strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.Record.RefreshToken}}.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var body struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
			Error        string `json:"error"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
			return nil, fmt.Errorf("storetest: bad response: %w", err)
		}
		if body.Error == "invalid_grant" {
			return nil, fmt.Errorf("storetest: invalid_grant: %w", tokenstore.ErrLoginRequired)
		}
		if body.RefreshToken != "" {
			r.Rotated(body.RefreshToken)
		}
		return &engine.Result{Token: &oauth2.Token{AccessToken: body.AccessToken, TokenType: "Bearer",
			Expiry: time.Now().Add(time.Hour)}}, nil
	}
}

func count(endpoint string) (int, error) {
	resp, err := http.Get(endpoint + "/count")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strconv.Atoi(string(b))
}

// refreshLoop runs goroutines Sources on st, each refreshing (Invalidate,
// then Token) until the server has rotated rotations times.
func refreshLoop(t testing.TB, st tokenstore.Store, endpoint string, goroutines, rotations int) {
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := engine.NewSource(engine.SourceConfig{Store: st, Key: Key, Fetch: Fetch(endpoint),
				RefreshTimeout: 60 * time.Second}, nil)
			if err != nil {
				errs <- err
				return
			}
			for {
				n, err := count(endpoint)
				if err != nil {
					errs <- err
					return
				}
				if n >= rotations {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				tok, err := s.TokenContext(ctx)
				cancel()
				if err != nil {
					errs <- fmt.Errorf("token: %w", err)
					return
				}
				s.Invalidate(tok)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func seed(t testing.TB, st tokenstore.Store) {
	t.Helper()
	err := engine.SaveRecord(context.Background(), st, Key, &engine.Record{RefreshToken: "rt-0",
		Subject: "alice", Issuer: "https://issuer.example", ClientID: "storetest"})
	if err != nil {
		t.Fatal(err)
	}
}

// check verifies the server's counts and the store's final record.
func check(t testing.TB, srv *server, st tokenstore.Store, rotations int) {
	t.Helper()
	srv.mu.Lock()
	defer srv.mu.Unlock()
	t.Logf("%d rotations, %d token requests", srv.n, srv.requests)
	if srv.n < rotations {
		t.Errorf("only %d rotations, want %d", srv.n, rotations)
	}
	if srv.requests != srv.n {
		t.Errorf("%d token requests for %d rotations: some refresh token was sent twice or refused", srv.requests, srv.n)
	}
	for rt, n := range srv.uses {
		if n != 1 {
			t.Errorf("refresh token %s sent %d times", rt, n)
		}
	}
	rec, err := engine.LoadRecord(context.Background(), st, Key)
	if err != nil || rec.RefreshToken != srv.current {
		t.Errorf("the store holds %v (%v), want the final refresh token", rec, err)
	}
}

// Goroutines is the in-process variant, for a store that cannot span
// processes (Memory): goroutines Sources share st.
func Goroutines(t *testing.T, st tokenstore.Store, goroutines, rotations int) {
	srv := newServer()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	seed(t, st)
	refreshLoop(t, st, hs.URL, goroutines, rotations)
	check(t, srv, st, rotations)
}

// CrossProcess runs cfg.Procs children of this test binary (cfg.ChildTest)
// with cfg.Goroutines Sources each against one key of the store, then
// checks that the server saw exactly one request per refresh token and
// that the store holds the last one. Then it starts a child that holds a
// transaction, checks that the parent cannot enter it, SIGKILLs the child
// and checks that the parent can.
func CrossProcess(t *testing.T, cfg Config) {
	procs, goroutines, rotations := cfg.Procs, cfg.Goroutines, cfg.Rotations
	if procs == 0 {
		procs = 3
	}
	if goroutines == 0 {
		goroutines = 4
	}
	if rotations == 0 {
		rotations = 300
	}
	st := cfg.Open(t)
	srv := newServer()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	seed(t, st)
	env := append(append(os.Environ(), cfg.Env...), envURL+"="+hs.URL,
		envGoroutines+"="+strconv.Itoa(goroutines), envRotations+"="+strconv.Itoa(rotations))
	type result struct {
		out []byte
		err error
	}
	results := make(chan result, procs)
	for i := 0; i < procs; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^"+cfg.ChildTest+"$", "-test.count=1", "-test.timeout=300s", "-test.v")
		cmd.Env = slices.Concat(env, []string{envMode + "=refresh"})
		go func() {
			out, err := cmd.CombinedOutput()
			results <- result{out, err}
		}()
	}
	for i := 0; i < procs; i++ {
		r := <-results
		if r.err != nil || !strings.Contains(string(r.out), "STORETEST-CHILD-OK") {
			t.Fatalf("child failed: %v\n%s", r.err, r.out)
		}
	}
	check(t, srv, st, rotations)
	killInside(t, st, cfg, env)
}

// killInside checks that a process killed inside Update releases it.
func killInside(t *testing.T, st tokenstore.Store, cfg Config, env []string) {
	cmd := exec.Command(os.Args[0], "-test.run=^"+cfg.ChildTest+"$", "-test.count=1", "-test.timeout=300s", "-test.v")
	cmd.Env = slices.Concat(env, []string{envMode + "=hold"})
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	held := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "STORETEST-HOLDING") {
			held = true
			break
		}
	}
	if !held {
		cmd.Wait()
		t.Fatal("the holding child never entered its transaction")
	}
	go io.Copy(io.Discard, out)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err = st.Update(ctx, Key, func(context.Context, tokenstore.Tx) error { return nil })
	cancel()
	if !errors.Is(err, tokenstore.ErrLocked) {
		t.Fatalf("Update while another process holds the key = %v, want ErrLocked", err)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no cleanup runs
		t.Fatal(err)
	}
	cmd.Wait()
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ran := false
	if err := st.Update(ctx, Key, func(context.Context, tokenstore.Tx) error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("Update after the holder was killed = %v (ran %v): the dead process kept the lock", err, ran)
	}
}

// Child is the body of cfg.ChildTest; it skips unless CrossProcess started
// this process.
func Child(t *testing.T, open func(t testing.TB) tokenstore.Store) {
	mode := os.Getenv(envMode)
	if mode == "" {
		t.Skip("only runs as a child of a storetest.CrossProcess test")
	}
	st := open(t)
	switch mode {
	case "hold":
		st.Update(context.Background(), Key, func(ctx context.Context, tx tokenstore.Tx) error {
			fmt.Println("STORETEST-HOLDING")
			time.Sleep(time.Hour)
			return nil
		})
	case "refresh":
		g, _ := strconv.Atoi(os.Getenv(envGoroutines))
		n, _ := strconv.Atoi(os.Getenv(envRotations))
		refreshLoop(t, st, os.Getenv(envURL), g, n)
		if !t.Failed() {
			fmt.Println("STORETEST-CHILD-OK")
		}
	}
}

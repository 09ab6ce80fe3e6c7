package tokenstore

import (
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
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/keyringtest"
	"golang.org/x/oauth2"
)

// The cross-process test re-executes this test binary as two children that
// share one store and one lock directory. The token endpoint runs in the
// parent, over loopback, and counts every refresh token it receives.

const (
	envChild   = "OAUTHSAFE_XPROC_CHILD"
	envURL     = "OAUTHSAFE_XPROC_URL"
	envStore   = "OAUTHSAFE_XPROC_STORE" // "file" or "keyring"
	envPath    = "OAUTHSAFE_XPROC_PATH"
	envLockDir = "OAUTHSAFE_XPROC_LOCKDIR"
)

const xprocPassphrase = "cross-process test passphrase"

// httpRefresh is a RefreshFunc for the test token endpoint.
func httpRefresh(endpoint string) RefreshFunc {
	return func(ctx context.Context, rt string) (*oauth2.Token, error) {
		req, err := http.NewRequestWithContext(ctx, "POST", endpoint+"/token",
			strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode()))
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
			ExpiresIn    int64  `json:"expires_in"`
			Error        string `json:"error"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
			return nil, fmt.Errorf("test client: bad response: %w", err)
		}
		if body.Error == "invalid_grant" {
			return nil, fmt.Errorf("test client: invalid_grant: %w", ErrLoginRequired)
		}
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("test client: status %d", resp.StatusCode)
		}
		return &oauth2.Token{AccessToken: body.AccessToken, RefreshToken: body.RefreshToken,
			TokenType: "Bearer", Expiry: time.Now().Add(time.Duration(body.ExpiresIn) * time.Second)}, nil
	}
}

// serve exposes srv over HTTP: /token, /check (is this access token valid)
// and /barrier (returns once n callers have arrived).
func (srv *tokenServer) handler(n int) http.Handler {
	mux := http.NewServeMux()
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		tok, err := srv.refresh(r.Context(), r.PostFormValue("refresh_token"))
		if errors.Is(err, ErrLoginRequired) {
			w.WriteHeader(400)
			io.WriteString(w, `{"error":"invalid_grant"}`)
			return
		}
		if err != nil {
			w.WriteHeader(503)
			io.WriteString(w, `{"error":"temporarily_unavailable"}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"access_token": tok.AccessToken,
			"refresh_token": tok.RefreshToken, "token_type": "Bearer", "expires_in": 3600})
	})
	mux.HandleFunc("POST /check", func(w http.ResponseWriter, r *http.Request) {
		srv.mu.Lock()
		ok := srv.access[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		srv.mu.Unlock()
		if !ok {
			w.WriteHeader(401)
		}
	})
	mux.HandleFunc("POST /barrier", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived++
		if arrived == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
		case <-time.After(20 * time.Second):
			w.WriteHeader(504)
		}
	})
	return mux
}

// TestCrossProcessChild is the child's body; it is skipped unless the
// parent test started this binary for it.
func TestCrossProcessChild(t *testing.T) {
	if os.Getenv(envChild) != "1" {
		t.Skip("only runs as a child of TestCrossProcessRefresh")
	}
	ctx := context.Background()
	endpoint := os.Getenv(envURL)
	var st Store
	switch os.Getenv(envStore) {
	case "file":
		st = &EncryptedFile{Path: os.Getenv(envPath), Passphrase: passphrase(xprocPassphrase)}
	case "keyring":
		st = &Keyring{Service: "oauthsafe-xproc", Timeout: 5 * time.Second, UnlockTimeout: 10 * time.Second}
	default:
		t.Fatal("unknown store")
	}
	// Both children start from the same expired access token and the same
	// refresh token they had loaded before.
	s, err := NewSource(SourceConfig{Store: st, Key: "xproc", Refresh: httpRefresh(endpoint),
		LockDir: os.Getenv(envLockDir)}, &oauth2.Token{AccessToken: "at-expired", RefreshToken: "rt-0",
		Expiry: time.Now().Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(endpoint+"/barrier", "text/plain", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("barrier: %v %v", err, resp)
	}
	tok, err := s.TokenContext(ctx)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	req, _ := http.NewRequest("POST", endpoint+"/check", nil)
	tok.SetAuthHeader(req)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the token the child ended with is not valid at the server: %v %v", err, resp)
	}
	fmt.Println("XPROC-CHILD-OK")
}

func TestCrossProcessRefresh(t *testing.T) {
	t.Run("EncryptedFile", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "store", "tokens.enc")
		st := &EncryptedFile{Path: path, Passphrase: passphrase(xprocPassphrase)}
		crossProcess(t, st, []string{envStore + "=file", envPath + "=" + path}, os.Environ())
	})
	t.Run("Keyring", func(t *testing.T) {
		d := keyringtest.New(t)
		st := &Keyring{Service: "oauthsafe-xproc", Timeout: 5 * time.Second}
		crossProcess(t, st, []string{envStore + "=keyring"}, d.Env())
	})
}

func crossProcess(t *testing.T, st Store, extraEnv, baseEnv []string) {
	ctx := context.Background()
	srv := newTokenServer(time.Now)
	srv.delay = 50 * time.Millisecond // widen the window for a race
	hs := httptest.NewServer(srv.handler(2))
	defer hs.Close()
	if err := SaveRefreshToken(ctx, st, "xproc", "rt-0"); err != nil {
		t.Fatal(err)
	}
	lockDir := filepath.Join(t.TempDir(), "locks")
	type result struct {
		out []byte
		err error
	}
	results := make(chan result, 2)
	for i := 0; i < 2; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrossProcessChild$", "-test.count=1", "-test.timeout=60s", "-test.v")
		cmd.Env = append(append([]string(nil), baseEnv...), envChild+"=1", envURL+"="+hs.URL, envLockDir+"="+lockDir)
		cmd.Env = append(cmd.Env, extraEnv...)
		go func() {
			out, err := cmd.CombinedOutput()
			results <- result{out, err}
		}()
	}
	for i := 0; i < 2; i++ {
		r := <-results
		if r.err != nil || !strings.Contains(string(r.out), "XPROC-CHILD-OK") {
			t.Fatalf("child failed: %v\n%s", r.err, r.out)
		}
	}
	requests, reuse, uses, current := srv.stats()
	t.Logf("server: %d refresh requests, uses %v", requests, uses)
	if reuse != 0 {
		t.Fatalf("the server saw %d reused refresh tokens", reuse)
	}
	if uses["rt-0"] != 1 {
		t.Fatalf("the first refresh token was sent %d times, want exactly 1", uses["rt-0"])
	}
	for rt, n := range uses {
		if n != 1 {
			t.Fatalf("refresh token %q sent %d times", rt, n)
		}
	}
	// Access tokens are never shared through the store (S12), so the
	// second child must refresh with the rotated token: two requests.
	if requests != 2 {
		t.Fatalf("%d refresh requests, want 2 (one per process, each with a different refresh token)", requests)
	}
	got, err := LoadRefreshToken(ctx, st, "xproc")
	if err != nil || got != current {
		t.Fatalf("store holds %q (%v), want the final refresh token %q", got, err, current)
	}
}

package oauthclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/validate"
	"golang.org/x/oauth2"
)

// testClock is a settable clock near real time (ID tokens are signed with
// real times).
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}
func (c *testClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// failingStore is a Memory whose Tx.Put fails while fail is set.
type failingStore struct {
	tokenstore.Memory
	fail atomic.Bool
}

type failingTx struct {
	tokenstore.Tx
	f *failingStore
}

var errStoreDown = errors.New("test store: disk full")

func (f *failingStore) Update(ctx context.Context, key string, fn func(context.Context, tokenstore.Tx) error) error {
	return f.Memory.Update(ctx, key, func(ctx context.Context, tx tokenstore.Tx) error { return fn(ctx, failingTx{tx, f}) })
}

func (tx failingTx) Put(ctx context.Context, v []byte) error {
	if tx.f.fail.Load() {
		return errStoreDown
	}
	return tx.Tx.Put(ctx, v)
}

// loggedIn runs a login against h and returns the client (on clk) and tokens.
func loggedIn(t *testing.T, h *hostileAS, clk *testClock) (*Client, *Tokens) {
	t.Helper()
	cfg := h.config()
	cfg.Now = clk.Now
	return loginWith(t, h, cfg)
}

// loginWith logs in through h with cfg (h.config() with a test's
// changes: a clock, a Wrap, a client secret) and returns the client and
// the login's tokens.
func loginWith(t *testing.T, h *hostileAS, cfg Config) (*Client, *Tokens) {
	t.Helper()
	c, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, good := h.start(t, c)
	toks, err := c.Exchange(context.Background(), p, good)
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.nonce = "" // refreshed ID tokens carry no nonce; none unless a case adds one
	h.mu.Unlock()
	return c, toks
}

// TestRotationSurvivesEveryRefusal (S23): a 200 refresh response that
// rotates the refresh token and is then refused, for every reason a
// response can be refused, with the store write succeeding or failing:
// the spent token is never sent again and the rotated one is used next.
func TestRotationSurvivesEveryRefusal(t *testing.T) {
	reasons := []struct {
		name  string
		extra func(h *hostileAS) map[string]any
		want  error // nil: only a typed *AuthError of a malformed answer
	}{
		{"bad ID token", func(h *hostileAS) map[string]any {
			return map[string]any{"id_token": h.idToken(nopTB{}, map[string]any{"aud": "another-client", "nonce": nil})}
		}, ErrIDToken},
		{"other subject", func(h *hostileAS) map[string]any {
			return map[string]any{"id_token": h.idToken(nopTB{}, map[string]any{"sub": "user-2", "nonce": nil})}
		}, &validate.ClaimError{Claim: "sub"}},
		{"wider scope", func(h *hostileAS) map[string]any { return map[string]any{"scope": "openid profile admin"} }, errScopeWidened},
		{"unknown token_type", func(h *hostileAS) map[string]any { return map[string]any{"token_type": "mac"} }, errUnknownTokenType},
		{"malformed expires_in", func(h *hostileAS) map[string]any { return map[string]any{"expires_in": "soon"} }, nil},
		{"missing access_token", func(h *hostileAS) map[string]any { return map[string]any{"access_token": nil} }, nil},
	}
	for _, reason := range reasons {
		for _, storeFails := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/store_fails=%v", reason.name, storeFails), func(t *testing.T) {
				h := newHostileAS(t)
				clk := newTestClock()
				c, toks := loggedIn(t, h, clk)
				store := &failingStore{}
				src, err := c.TokenSource(context.Background(), TokenSourceConfig{Store: store, Key: "k"}, toks)
				if err != nil {
					t.Fatal(err)
				}
				var mu sync.Mutex
				var sent []string
				h.setToken(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					sent = append(sent, r.PostForm.Get("refresh_token"))
					i := len(sent)
					mu.Unlock()
					if i == 1 && storeFails {
						store.fail.Store(true) // the store goes down once the request has left
					}
					extra := map[string]any{"access_token": fmt.Sprintf("AT-%d", i), "refresh_token": fmt.Sprintf("RT-%d", i)}
					if i == 1 {
						for k, v := range reason.extra(h) {
							extra[k] = v
						}
					}
					h.writeTokens(w, extra)
				})
				src.Invalidate(toks.OAuth2Token())
				_, err = src.Token()
				// A refused answer is permanent; with the store down too, the
				// failure is temporary (the rotation waits in memory).
				var te *tokenstore.TemporaryError
				if err == nil || errors.As(err, &te) != storeFails {
					t.Fatalf("refused response: err = %v, want a *tokenstore.TemporaryError only when the store failed", err)
				}
				var re *AuthError
				if (reason.want != nil && !errors.Is(err, reason.want)) || (reason.want == nil && !(errors.As(err, &re) && re.Problem != "")) {
					t.Fatalf("err = %v, want %v", err, reason.want)
				}
				if storeFails != errors.Is(err, errStoreDown) {
					t.Fatalf("err = %v; the store failure must be reported exactly when it happens", err)
				}
				rec, _ := engine.LoadRecord(context.Background(), store, "k")
				if want := map[bool]string{false: "RT-1", true: "RT-secret-value"}[storeFails]; rec == nil || rec.RefreshToken != want {
					t.Fatalf("store holds %v, want %s", rec, want)
				}
				clk.Advance(2 * time.Second) // past the first backoff
				tok, err := src.Token()
				if storeFails {
					// The rotation held in memory cannot be written: no
					// request at all, neither with the spent token nor
					// with the rotated one.
					if !errors.Is(err, errStoreDown) {
						t.Fatalf("second refresh with the store down: %v", err)
					}
					store.fail.Store(false)
					clk.Advance(4 * time.Second)
					tok, err = src.Token()
				}
				if err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				defer mu.Unlock()
				want := []string{"RT-secret-value", "RT-1"}
				if strings.Join(sent, ",") != strings.Join(want, ",") {
					t.Fatalf("refresh tokens sent: %v, want %v: the spent one must never be resent", sent, want)
				}
				if n := int(h.tokenCalls.Load()); n != 1+len(want) { // the code exchange, then the refreshes
					t.Fatalf("%d token requests at the server, want %d", n, 1+len(want))
				}
				rec, _ = engine.LoadRecord(context.Background(), store, "k")
				if last := fmt.Sprintf("RT-%d", len(want)); rec == nil || rec.RefreshToken != last || tok.AccessToken != fmt.Sprintf("AT-%d", len(want)) {
					t.Fatalf("store holds %v and token %s; want %s", rec, tok.AccessToken, last)
				}
			})
		}
	}
}

// TestMemoryOnlyRotationReachesOnRecordChange: with Store nil, the
// application's OnRecordChange sees every rotation, refused responses
// included.
func TestMemoryOnlyRotationReachesOnRecordChange(t *testing.T) {
	h := newHostileAS(t)
	clk := newTestClock()
	c, toks := loggedIn(t, h, clk)
	var seen []string
	src, err := c.TokenSource(context.Background(), TokenSourceConfig{OnRecordChange: func(_ context.Context, r *tokenstore.Record) error {
		seen = append(seen, r.RefreshToken)
		return nil
	}}, toks)
	if err != nil {
		t.Fatal(err)
	}
	h.setToken(func(w http.ResponseWriter, r *http.Request) {
		h.writeTokens(w, map[string]any{"refresh_token": "RT-refused", "token_type": "mac"})
	})
	src.Invalidate(toks.OAuth2Token())
	if _, err := src.Token(); !errors.Is(err, errUnknownTokenType) {
		t.Fatalf("err = %v", err)
	}
	if len(seen) != 1 || seen[0] != "RT-refused" {
		t.Fatalf("OnRecordChange saw %v, want the rotation of the refused response", seen)
	}
}

// TestResumedSourceChecksSubject (S25): a source started from the store
// alone (as `oauthsafe token` is) binds refreshed ID tokens to the stored
// subject.
func TestResumedSourceChecksSubject(t *testing.T) {
	h := newHostileAS(t)
	c := h.client(t)
	for _, tc := range []struct {
		sub  string
		want error
	}{{"user-2", &validate.ClaimError{Claim: "sub"}}, {"user-1", nil}} {
		store := &tokenstore.Memory{}
		if err := engine.SaveRecord(context.Background(), store, "k", &engine.Record{RefreshToken: "RT-stored",
			Subject: "user-1", Scopes: []string{"openid", "profile"}, Issuer: h.srv.URL, ClientID: "client-1"}); err != nil {
			t.Fatal(err)
		}
		src, err := c.TokenSource(context.Background(), TokenSourceConfig{Store: store, Key: "k"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		h.setToken(func(w http.ResponseWriter, r *http.Request) {
			h.writeTokens(w, map[string]any{"access_token": "AT-for-" + tc.sub,
				"id_token": h.idToken(nopTB{}, map[string]any{"sub": tc.sub, "nonce": nil})})
		})
		tok, err := src.Token()
		if tc.want == nil {
			if err != nil || tok.AccessToken != "AT-for-user-1" {
				t.Fatalf("same subject: %v, %v", tok, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) || !errors.Is(err, ErrIDToken) || tok != nil {
			t.Fatalf("sub %s: %v, %v; want no token and %v", tc.sub, tok, err, tc.want)
		}
	}
	// A record of another issuer or client is never refreshed here.
	store := &tokenstore.Memory{}
	engine.SaveRecord(context.Background(), store, "k", &engine.Record{RefreshToken: "RT-other",
		Subject: "user-1", Issuer: "https://elsewhere.example", ClientID: "client-1"})
	src, _ := c.TokenSource(context.Background(), TokenSourceConfig{Store: store, Key: "k"}, nil)
	before := h.tokenCalls.Load()
	if _, err := src.Token(); !errors.Is(err, tokenstore.ErrLoginRequired) || h.tokenCalls.Load() != before {
		t.Fatalf("foreign record: %v", err)
	}
}

// TestMaxAgeRequiresAuthTime (S25): with max_age sent, the ID token must
// carry an auth_time no older than max_age plus the leeway.
func TestMaxAgeRequiresAuthTime(t *testing.T) {
	for _, tc := range []struct {
		name     string
		authTime any
		want     error
	}{
		{"missing", nil, errAuthTime},
		{"stale", time.Now().Add(-time.Hour).Unix(), errAuthTime},
		{"fresh", time.Now().Add(-time.Minute).Unix(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostileAS(t)
			c := h.client(t)
			p, authURL, err := c.Start(context.Background(), StartOptions{MaxAge: 5 * time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(authURL)
			if u.Query().Get("max_age") != "300" {
				t.Fatalf("max_age not sent: %s", authURL)
			}
			nonce := u.Query().Get("nonce")
			h.setToken(func(w http.ResponseWriter, r *http.Request) {
				h.writeTokens(w, map[string]any{"id_token": h.idToken(nopTB{}, map[string]any{"nonce": nonce, "auth_time": tc.authTime})})
			})
			_, err = c.Exchange(context.Background(), p, url.Values{"code": {"c"}, "state": {p.State()}, "iss": {h.srv.URL}})
			if tc.want == nil && err != nil {
				t.Fatalf("fresh auth_time refused: %v", err)
			}
			if tc.want != nil && (!errors.Is(err, tc.want) || !errors.Is(err, ErrIDToken)) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// serviceAS is a hostile server for the client credentials grant.
func serviceClientFor(t *testing.T, h *hostileAS, timeout time.Duration) *Client {
	t.Helper()
	cfg := h.config()
	cfg.ClientSecret = mustSecret("service-secret")
	cfg.HTTP.Timeout = timeout
	c, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestServiceBackoffWhileWaiting (S24): 50 goroutines calling Token in a
// loop for 5 s against a token endpoint that answers 503 cause at most 10
// requests: the backoff holds for callers that wait, not only for
// background refreshes.
func TestServiceBackoffWhileWaiting(t *testing.T) {
	h := newHostileAS(t)
	h.setToken(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":"temporarily_unavailable"}`))
	})
	src := serviceClientFor(t, h, 0).serviceSource(nil, nil)
	stop := time.Now().Add(5 * time.Second)
	var wg sync.WaitGroup
	var calls atomic.Int64
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				if _, err := src.Token(); err == nil {
					t.Error("a token from a server that only answers 503")
					return
				}
				calls.Add(1)
				time.Sleep(time.Millisecond)
			}
		}()
	}
	wg.Wait()
	n := h.tokenCalls.Load()
	t.Logf("%d Token calls, %d token requests", calls.Load(), n)
	if n > 10 || n < 2 {
		t.Fatalf("%d token requests in 5 s, want between 2 and 10", n)
	}
}

// TestTokenHonoursContext: a caller waiting for a token returns when its
// context ends, through the engine and through the API transport.
func TestTokenHonoursContext(t *testing.T) {
	h := newHostileAS(t)
	release := make(chan struct{})
	h.setToken(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	defer close(release)
	src := serviceClientFor(t, h, 10*time.Second).serviceSource(nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := src.TokenContext(ctx); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("TokenContext = %v, want DeadlineExceeded", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("TokenContext ignored its context")
	}
	// The API transport waits with the request's context, not Token().
	hc, err := apiclient.New(src, apiclient.Config{AllowedOrigins: []string{"https://api.example"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	req, _ := http.NewRequestWithContext(ctx2, "GET", "https://api.example/x", nil)
	go func() { _, err := hc.Do(req); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("API call = %v, want DeadlineExceeded", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the API transport waited for a token beyond the request's context")
	}
}

// TestRefreshScopeNarrowing: no scope by default, a subset on request, and
// a widening request refused before any request (S10).
func TestRefreshScopeNarrowing(t *testing.T) {
	h := newHostileAS(t)
	clk := newTestClock()
	c, toks := loggedIn(t, h, clk)
	h.setToken(func(w http.ResponseWriter, r *http.Request) { h.writeTokens(w, map[string]any{"scope": nil}) })
	if _, err := c.TokenSource(context.Background(), TokenSourceConfig{Scopes: []string{"openid", "admin"}}, toks); !errors.Is(err, errScopeWidened) {
		t.Fatalf("widening at construction: %v", err)
	}
	src, err := c.TokenSource(context.Background(), TokenSourceConfig{Scopes: []string{"openid"}}, toks)
	if err != nil {
		t.Fatal(err)
	}
	src.Invalidate(toks.OAuth2Token())
	if _, err := src.Token(); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	form := h.lastForm
	h.mu.Unlock()
	if form.Get("scope") != "openid" || strings.Join(src.Scopes(), " ") != "openid profile" {
		t.Fatalf("narrowed refresh sent scope %q, recorded %v", form.Get("scope"), src.Scopes())
	}
	// Resumed with a wider narrowing than the record holds: refused before any request.
	store := &tokenstore.Memory{}
	engine.SaveRecord(context.Background(), store, "k", &engine.Record{RefreshToken: "RT-x", Subject: "user-1",
		Scopes: []string{"openid"}, Issuer: h.srv.URL, ClientID: "client-1"})
	wide, _ := c.TokenSource(context.Background(), TokenSourceConfig{Store: store, Key: "k", Scopes: []string{"openid", "profile"}}, nil)
	before := h.tokenCalls.Load()
	if _, err := wide.Token(); !errors.Is(err, errScopeWidened) || h.tokenCalls.Load() != before {
		t.Fatalf("widening refresh: %v, %d requests", err, h.tokenCalls.Load()-before)
	}
}

var _ oauth2.TokenSource = (*TokenSource)(nil)

// TestResumeWithoutRecordIsLoginRequired: TokenSource's doc promises an
// error matching ErrLoginRequired when there is nothing to resume, under
// either package's name, and no request is made.
func TestResumeWithoutRecordIsLoginRequired(t *testing.T) {
	h := newHostileAS(t)
	c := h.client(t)
	src, err := c.TokenSource(context.Background(), TokenSourceConfig{Store: &tokenstore.Memory{}, Key: "nobody"}, nil)
	if err == nil {
		_, err = src.TokenContext(context.Background())
	}
	if !errors.Is(err, tokenstore.ErrLoginRequired) {
		t.Fatalf("err = %v, want ErrLoginRequired", err)
	}
	if n := h.tokenCalls.Load(); n != 0 {
		t.Fatalf("%d token requests", n)
	}
}

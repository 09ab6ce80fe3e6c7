package oauthclient

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// rotatingToken makes h's token endpoint answer every refresh with a
// rotated pair (AT-n, RT-n) and record the refresh tokens it receives.
func rotatingToken(h *hostileAS) (sent func() []string) { return rotatingAfter(h, nil) }

// firstAnswerThenRotating makes h's token endpoint answer the first
// refresh with status and body (as JSON), and the later ones as
// rotatingToken does (AT-2, RT-2, …).
func firstAnswerThenRotating(h *hostileAS, status int, body string) (sent func() []string) {
	return rotatingAfter(h, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	})
}

// rotatingAfter answers the first refresh with first (nil: as the
// others) and every refresh after it with a rotated pair (AT-n, RT-n),
// recording the refresh tokens received.
func rotatingAfter(h *hostileAS, first func(http.ResponseWriter)) (sent func() []string) {
	var mu sync.Mutex
	var got []string
	h.setToken(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.PostForm.Get("refresh_token"))
		i := len(got)
		mu.Unlock()
		if i == 1 && first != nil {
			first(w)
			return
		}
		h.writeTokens(w, map[string]any{"access_token": fmt.Sprintf("AT-%d", i), "refresh_token": fmt.Sprintf("RT-%d", i)})
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

// checkRotationUsedNext checks what must hold after a first refresh whose
// answer handed RT-1 over and then failed (refused, a failing or
// panicking hook): the store holds RT-1, and the next refresh (2 h later,
// past any backoff and the token's life) sends RT-1; the login's refresh
// token is never sent again.
func checkRotationUsedNext(t *testing.T, store tokenstore.Store, clk *testClock, src *TokenSource, sent func() []string) {
	t.Helper()
	rec, err := engine.LoadRecord(context.Background(), store, "k")
	if err != nil || rec.RefreshToken != "RT-1" {
		t.Fatalf("the store holds %v (%v), want RT-1", rec, err)
	}
	clk.Advance(2 * time.Hour)
	if _, err := src.Token(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sent(), ","); got != "RT-secret-value,RT-1" {
		t.Fatalf("refresh tokens sent: %s; the rotated one must be used next, the spent one never again", got)
	}
}

// TestRotationHandedOverBeforeAnyCheck (S23): a 200 token response holding
// a refresh_token string hands it to the engine before anything else is
// looked at, whatever else the body holds: "error": null (no error: the
// refresh succeeds), an error code inside the 200, an error of the wrong
// type, an unknown token type, an unusable expiry, a widened scope, no
// access token. The rotated token is stored and sent next; the spent one
// is never sent again.
func TestRotationHandedOverBeforeAnyCheck(t *testing.T) {
	const tail = `"access_token":"AT-1","token_type":"Bearer","expires_in":3600,"refresh_token":"RT-1"`
	for _, tc := range []struct {
		name, body string
		ok         bool
	}{
		{"error null", `{"error":null,` + tail + `}`, true},
		{"error inside a 200", `{"error":"server_error",` + tail + `}`, false},
		{"error not a string", `{"error":42,` + tail + `}`, false},
		{"unknown token type", `{` + tail + `,"token_type":"mac"}`, false},
		{"expiry not a number", `{` + tail + `,"expires_in":"soon"}`, false},
		{"expiry an object", `{` + tail + `,"expires_in":{}}`, false},
		{"wider scope", `{` + tail + `,"scope":"openid profile admin"}`, false},
		{"no access token", `{"token_type":"Bearer","refresh_token":"RT-1"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostileAS(t)
			clk := newTestClock()
			c, toks := loggedIn(t, h, clk)
			store := &tokenstore.Memory{}
			src, err := c.TokenSource(context.Background(), TokenSourceConfig{Store: store, Key: "k"}, toks)
			if err != nil {
				t.Fatal(err)
			}
			sent := firstAnswerThenRotating(h, http.StatusOK, tc.body)
			src.Invalidate(toks.OAuth2Token())
			_, err = src.Token()
			if (err == nil) != tc.ok {
				t.Fatalf("Token = %v, want success %v", err, tc.ok)
			}
			checkRotationUsedNext(t, store, clk, src, sent)
		})
	}
}

// TestPermanentFailuresAreNotTemporary: one classification of refresh
// failures. A network failure, a 5xx (JSON or HTML) and a 429 are a
// *tokenstore.TemporaryError; a refused client, scope or grant type, a
// malformed 200 and a scope the caller may not narrow to are permanent:
// never a *TemporaryError, never "temporary" in the message, the record
// kept, and a message that says what to fix. Both kinds back off: a second
// call at once makes no request.
func TestPermanentFailuresAreNotTemporary(t *testing.T) {
	type answer struct {
		status int
		body   string
	}
	for _, tc := range []struct {
		name      string
		ans       *answer // nil: the server is gone (connection refused)
		scopes    []string
		temporary bool
		hint      string
	}{
		{"invalid_client", &answer{401, `{"error":"invalid_client"}`}, nil, false, "check the client id"},
		{"unauthorized_client", &answer{400, `{"error":"unauthorized_client"}`}, nil, false, "registration"},
		{"invalid_scope", &answer{400, `{"error":"invalid_scope"}`}, nil, false, "scopes the client is registered for"},
		{"HTML 200", &answer{200, `<html>login</html>`}, nil, false, "HTML"},
		{"narrowing beyond the grant", nil, []string{"admin"}, false, "not granted"},
		{"503", &answer{503, `{"error":"temporarily_unavailable"}`}, nil, true, ""},
		{"502 HTML", &answer{502, `<html>bad gateway</html>`}, nil, true, ""},
		{"429", &answer{429, `{"error":"slow_down"}`}, nil, true, ""},
		{"connection refused", nil, nil, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostileAS(t)
			clk := newTestClock()
			c, toks := loggedIn(t, h, clk)
			store := &tokenstore.Memory{}
			src, err := c.TokenSource(context.Background(), TokenSourceConfig{Store: store, Key: "k"}, toks)
			if err != nil {
				t.Fatal(err)
			}
			if tc.scopes != nil {
				if src, err = c.TokenSource(context.Background(), TokenSourceConfig{Store: store, Key: "k", Scopes: tc.scopes}, nil); err != nil {
					t.Fatal(err)
				}
			}
			calls := 0
			h.setToken(func(w http.ResponseWriter, r *http.Request) {
				calls++
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.ans.status)
				io.WriteString(w, tc.ans.body)
			})
			if tc.ans == nil && tc.scopes == nil {
				h.srv.Close()
			}
			src.Invalidate(toks.OAuth2Token())
			_, err = src.Token()
			var te *tokenstore.TemporaryError
			switch {
			case err == nil:
				t.Fatal("Token succeeded")
			case errors.As(err, &te) != tc.temporary:
				t.Fatalf("Token = %v; temporary = %v, want %v", err, !tc.temporary, tc.temporary)
			case !tc.temporary && strings.Contains(err.Error(), "temporary"):
				t.Fatalf("a permanent failure says temporary: %v", err)
			case !strings.Contains(err.Error(), tc.hint):
				t.Fatalf("Token = %v, want it to say %q", err, tc.hint)
			case errors.Is(err, tokenstore.ErrLoginRequired):
				t.Fatalf("Token = %v: not a logout", err)
			}
			if rec, err := engine.LoadRecord(context.Background(), store, "k"); err != nil || rec.RefreshToken != "RT-secret-value" {
				t.Fatalf("the record after a failure: %v, %v", rec, err)
			}
			before := calls
			if _, err2 := src.Token(); err2 == nil || calls != before {
				t.Fatalf("second call at once: %v, %d more requests; want the same failure, no request", err2, calls-before)
			}
		})
	}
}

// TestInvalidationCooldownPerEngine: an API that answers 401 invalid_token
// to every token, called through 10 per-request clients built on one
// user's engine (apiclient.Transport.Client, the web backend pattern) within the
// cooldown, causes exactly one refresh (one rotation of the user's refresh
// token): the cooldown is the engine's, not each client's.
func TestInvalidationCooldownPerEngine(t *testing.T) {
	h := newHostileAS(t)
	clk := newTestClock()
	c, toks := loggedIn(t, h, clk)
	sent := rotatingToken(h)
	src, err := c.TokenSource(context.Background(), TokenSourceConfig{Store: &tokenstore.Memory{}, Key: "k"}, toks)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer api.Close()
	pool := x509.NewCertPool()
	pool.AddCert(api.Certificate())
	shared, err := apiclient.NewTransport(apiclient.Config{AllowedOrigins: []string{api.URL}, HTTP: strictnet.Config{RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		hc, err := shared.Client(src)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Get(api.URL + "/me")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("call %d: %d", i, resp.StatusCode)
		}
	}
	if got := sent(); len(got) != 1 {
		t.Fatalf("%d refreshes (%v) for 10 refused calls within the cooldown, want 1", len(got), got)
	}
	// After the cooldown the next refusal may refresh once more.
	clk.Advance(11 * time.Second)
	hc, _ := shared.Client(src)
	resp, err := hc.Get(api.URL + "/me")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := sent(); len(got) != 2 {
		t.Fatalf("%d refreshes after the cooldown, want 2", len(got))
	}
}

// TestFlightPanicKeepsRotation: user code called from inside a refresh
// panics after the server rotated the refresh token: a tracing Wrap (after
// its RoundTrip returned the answer), OnRecordChange, a FetchFunc of the
// caller's own, and a slog handler. The process survives, the rotated
// token is stored, the refresh reports an error matching engine.ErrPanic
// (not temporary, not a logout), and the next refresh sends the rotated
// token, never the spent one. A panicking log handler costs one event
// only: the refresh succeeds.
func TestFlightPanicKeepsRotation(t *testing.T) {
	type hooks struct {
		wrap     func(http.RoundTripper) http.RoundTripper
		onChange func(context.Context, *tokenstore.Record) error
		fetch    func(engine.FetchFunc) engine.FetchFunc
		logger   *slog.Logger
		succeeds bool
	}
	var armed atomic.Bool
	cases := map[string]hooks{
		"wrap": {wrap: func(next http.RoundTripper) http.RoundTripper {
			return roundTripper(func(r *http.Request) (*http.Response, error) {
				resp, err := next.RoundTrip(r)
				if r.URL.Path == "/token" && armed.CompareAndSwap(true, false) {
					panic("tracing bug")
				}
				return resp, err
			})
		}},
		"OnRecordChange": {onChange: func(context.Context, *tokenstore.Record) error {
			if armed.CompareAndSwap(true, false) {
				panic("hook bug")
			}
			return nil
		}},
		"fetch": {fetch: func(inner engine.FetchFunc) engine.FetchFunc {
			return func(ctx context.Context, r *engine.Refresh) (*engine.Result, error) {
				res, err := inner(ctx, r)
				if armed.CompareAndSwap(true, false) {
					panic("fetch bug")
				}
				return res, err
			}
		}},
		"slog handler": {logger: slog.New(panicHandler{&armed}), succeeds: true},
	}
	for name, hk := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHostileAS(t)
			clk := newTestClock()
			cfg := h.config()
			cfg.Now = clk.Now
			cfg.HTTP.Wrap, cfg.HTTP.Logger = hk.wrap, hk.logger
			c, toks := loginWith(t, h, cfg)
			sent := rotatingToken(h)
			store := &tokenstore.Memory{}
			var src *TokenSource
			var err error
			if hk.fetch != nil {
				// The login's record, then an engine with the caller's own FetchFunc.
				if _, err := c.TokenSource(context.Background(), TokenSourceConfig{Store: store, Key: "k"}, toks); err != nil {
					t.Fatal(err)
				}
				var es *engine.Source
				es, err = engine.NewSource(engine.SourceConfig{Store: store, Key: "k", Now: clk.Now,
					Fetch: hk.fetch(c.refreshFetch(nil, nil))}, nil)
				src = newTokenSource(es)
			} else {
				src, err = c.TokenSource(context.Background(), TokenSourceConfig{Store: store, Key: "k", OnRecordChange: hk.onChange}, toks)
			}
			if err != nil {
				t.Fatal(err)
			}
			src.Invalidate(toks.OAuth2Token())
			armed.Store(true)
			_, err = src.Token()
			var te *tokenstore.TemporaryError
			switch {
			case hk.succeeds && err != nil:
				t.Fatalf("Token with a panicking log handler = %v, want success", err)
			case !hk.succeeds && (!errors.Is(err, engine.ErrPanic) || errors.As(err, &te) || errors.Is(err, tokenstore.ErrLoginRequired)):
				t.Fatalf("Token = %v, want a permanent error matching ErrPanic", err)
			}
			if armed.Load() {
				t.Fatal("the panicking code was never reached")
			}
			checkRotationUsedNext(t, store, clk, src, sent)
		})
	}
}

// panicHandler is a slog handler that panics once while armed is set.
type panicHandler struct{ armed *atomic.Bool }

func (h panicHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h panicHandler) Handle(context.Context, slog.Record) error {
	if h.armed.CompareAndSwap(true, false) {
		panic("log handler bug")
	}
	return nil
}
func (h panicHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h panicHandler) WithGroup(string) slog.Handler      { return h }

// TestUserPoolConfigReachesEveryEngine: what the pool's TokenSourceConfig sets reaches
// the engine of every user the pool resumes from the store: Scopes narrows
// each refresh (scope sent, a scope outside the grant refused before any
// request), OnRecordChange hears of each rotation once it is stored, and
// Logger gets one redacted event per refresh.
func TestUserPoolConfigReachesEveryEngine(t *testing.T) {
	ctx := context.Background()
	h := newHostileAS(t)
	clk := newTestClock()
	c, toks := loggedIn(t, h, clk)
	store := &tokenstore.Memory{}
	if _, err := c.TokenSource(ctx, TokenSourceConfig{Store: store, Key: "u"}, toks); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var scopes []string
	h.setToken(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		scopes = append(scopes, r.PostForm.Get("scope"))
		mu.Unlock()
		h.writeTokens(w, map[string]any{"access_token": "AT-2", "refresh_token": "RT-2", "scope": "openid"})
	})
	var changed []string
	var logs bytes.Buffer
	pool, err := c.UserPool(TokenSourceConfig{Store: store, Scopes: []string{"openid"},
		OnRecordChange: func(_ context.Context, rec *tokenstore.Record) error {
			changed = append(changed, rec.RefreshToken)
			return nil
		},
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := poolToken(ctx, pool, "u"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(scopes) != 1 || scopes[0] != "openid" {
		t.Fatalf("refresh scope parameters %q, want [openid]", scopes)
	}
	if len(changed) != 1 || changed[0] != "RT-2" {
		t.Fatalf("OnRecordChange saw %v", changed)
	}
	if !strings.Contains(logs.String(), "outcome=ok") || strings.Contains(logs.String(), "RT-2") || strings.Contains(logs.String(), "AT-2") {
		t.Fatalf("log: %s", logs.String())
	}
	wide, _ := c.UserPool(TokenSourceConfig{Store: store, Scopes: []string{"admin"}})
	if _, err := poolToken(ctx, wide, "u"); !errors.Is(err, errScopeWidened) || len(scopes) != 1 {
		t.Fatalf("a pool narrowing to a scope outside the grant: %v, %d requests", err, len(scopes)-1)
	}
}

// TestRequestFailuresAreTemporary: a request the transport could not
// complete is worth retrying whatever net/http calls it (a server that
// closed the idle connection has no exported sentinel and was once
// reported as permanent); a certificate the client refused stays
// permanent.
func TestRequestFailuresAreTemporary(t *testing.T) {
	idle := fmt.Errorf("oauthclient: token request failed: %w", &requestError{errors.New("http: server closed idle connection")})
	if err := fetchError(idle); err == idle || errors.Unwrap(err) != idle { // marked with engine.Transient
		t.Errorf("idle connection closed: %v is not marked temporary", err)
	}
	cert := fmt.Errorf("oauthclient: token request failed: %w", &requestError{x509.UnknownAuthorityError{}})
	if err := fetchError(cert); err != cert {
		t.Errorf("unknown authority: %v is marked temporary", err)
	}
}

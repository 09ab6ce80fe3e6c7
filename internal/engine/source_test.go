package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe"
	"github.com/oauthsafe/oauthsafe/tokenstore"

	"golang.org/x/oauth2"
)

// tokenServer is the token endpoint logic the lifecycle tests count at: it
// rotates refresh tokens and answers invalid_grant to any refresh token
// that is not the current one (a reused or unknown token), the way servers
// with reuse detection do. It is used directly as a RefreshFunc and behind
// an httptest server in the cross-process test.
type tokenServer struct {
	mu       sync.Mutex
	current  string
	uses     map[string]int
	requests int
	reuse    int
	access   map[string]bool
	fail     error         // if set, every request fails with it
	delay    time.Duration // how long a request takes
	gate     chan struct{} // if set, requests wait for it to close
	started  chan struct{} // if set, receives one value per request
	noRotate bool
	lifetime time.Duration
	now      func() time.Time
}

// errServer is what a FetchFunc returns for a 503: marked Transient.
var errServer = Transient(errors.New("test server: 503 temporarily unavailable"))

func newTokenServer(now func() time.Time) *tokenServer {
	return &tokenServer{current: "rt-0", uses: map[string]int{}, access: map[string]bool{},
		lifetime: time.Hour, now: now}
}

func randHex() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *tokenServer) refresh(ctx context.Context, rt string) (*oauth2.Token, error) {
	if s.started != nil {
		s.started <- struct{}{}
	}
	if s.gate != nil {
		<-s.gate
	}
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	s.uses[rt]++
	if s.fail != nil {
		return nil, s.fail
	}
	if rt != s.current {
		s.reuse++
		return nil, fmt.Errorf("test server: invalid_grant: %w", tokenstore.ErrLoginRequired)
	}
	at := "at-" + randHex()
	s.access[at] = true
	tok := &oauth2.Token{AccessToken: at, TokenType: "Bearer", Expiry: s.now().Add(s.lifetime)}
	if !s.noRotate {
		s.current = "rt-" + randHex()
		tok.RefreshToken = s.current
	}
	return tok, nil
}

func (s *tokenServer) stats() (requests, reuse int, uses map[string]int, current string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := map[string]int{}
	for k, v := range s.uses {
		u[k] = v
	}
	return s.requests, s.reuse, u, s.current
}

// fakeClock is a settable clock.
type fakeClock struct{ ns atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// setup returns a Source over a Memory store that holds the server's first
// refresh token, with an expired access token in memory.
func setup(t *testing.T, mod func(*SourceConfig)) (*Source, *tokenServer, *tokenstore.Memory, *fakeClock) {
	t.Helper()
	clk := newClock()
	srv := newTokenServer(clk.Now)
	st := &tokenstore.Memory{}
	saveRT(t, st, "k", "rt-0")
	cfg := SourceConfig{Store: st, Key: "k", Fetch: asFetch(srv.refresh), Now: clk.Now}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewSource(cfg, &oauth2.Token{AccessToken: "at-old", Expiry: clk.Now().Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	return s, srv, st, clk
}

func storedRT(t *testing.T, st tokenstore.Store) string {
	t.Helper()
	rec, err := LoadRecord(context.Background(), st, "k")
	if errors.Is(err, tokenstore.ErrNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return rec.RefreshToken
}

// saveRT stores a fresh login's record holding rt.
func saveRT(t testing.TB, st tokenstore.Store, key, rt string) {
	t.Helper()
	if err := SaveRecord(context.Background(), st, key, &Record{RefreshToken: rt, Subject: "alice",
		Issuer: "https://issuer", ClientID: "client"}); err != nil {
		t.Fatal(err)
	}
}

// asFetch adapts a plain refresh function (the test servers) to a
// FetchFunc that hands over rotations as oauthclient's does.
func asFetch(refresh func(ctx context.Context, rt string) (*oauth2.Token, error)) FetchFunc {
	return func(ctx context.Context, r *Refresh) (*Result, error) {
		if r.Record == nil {
			return nil, tokenstore.ErrLoginRequired
		}
		r.Sent()
		tok, err := refresh(ctx, r.Record.RefreshToken)
		if err != nil {
			if ctx.Err() == nil {
				r.Answered() // the test servers answer every request they fail
			}
			return nil, err
		}
		if tok.RefreshToken != "" {
			r.Rotated(tok.RefreshToken)
		}
		return &Result{Token: tok}, nil
	}
}

func TestConcurrentRefreshSingleRequest(t *testing.T) {
	s, srv, st, _ := setup(t, nil)
	srv.delay = 20 * time.Millisecond
	const n = 10000
	start := make(chan struct{})
	results := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			tok, err := s.Token()
			errs[i] = err
			if err == nil {
				results[i] = tok.AccessToken
			}
		}()
	}
	close(start)
	wg.Wait()
	requests, reuse, _, current := srv.stats()
	if requests != 1 || reuse != 0 {
		t.Fatalf("server saw %d refresh requests (%d reuses), want exactly 1", requests, reuse)
	}
	for i := range results {
		if errs[i] != nil || results[i] != results[0] || results[0] == "at-old" {
			t.Fatalf("caller %d got %q, %v; want the one new token %q", i, results[i], errs[i], results[0])
		}
	}
	if got := storedRT(t, st); got != current {
		t.Fatalf("store holds %q, want the rotated %q", got, current)
	}
}

func TestRefreshAheadDoesNotBlockCallers(t *testing.T) {
	clk := newClock()
	srv := newTokenServer(clk.Now)
	srv.gate = make(chan struct{})
	srv.started = make(chan struct{}, 100)
	st := &tokenstore.Memory{}
	saveRT(t, st, "k", "rt-0")
	s, err := NewSource(SourceConfig{Store: st, Key: "k", Fetch: asFetch(srv.refresh),
		Now: clk.Now}, &oauth2.Token{AccessToken: "at-current", RefreshToken: "rt-0",
		Expiry: clk.Now().Add(10 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(10*time.Minute - 30*time.Second) // inside the 60 s margin, still valid
	for i := 0; i < 100; i++ {
		tok := within(t, 10*time.Second, func() *oauth2.Token {
			tok, err := s.Token()
			if err != nil {
				t.Error(err)
			}
			return tok
		})
		if tok == nil || tok.AccessToken != "at-current" {
			t.Fatalf("call %d: got %v while the refresh is still running; want the current token", i, tok)
		}
	}
	<-srv.started // the background refresh did start...
	close(srv.gate)
	deadline := time.Now().Add(10 * time.Second)
	for {
		tok, err := s.Token()
		if err != nil {
			t.Fatal(err)
		}
		if tok.AccessToken != "at-current" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("background refresh never published a new token")
		}
		time.Sleep(time.Millisecond)
	}
	if requests, _, _, _ := srv.stats(); requests != 1 {
		t.Fatalf("%d refresh requests, want 1 background refresh for 100 calls", requests)
	}
}

// failingPut is a Store whose Tx.Put fails while fail is set. With
// failInFetch set, the fetch (downFetch) sets fail as it runs: the store
// goes down after the pending marker is written and the request left.
type failingPut struct {
	tokenstore.Memory
	fail        atomic.Bool
	failInFetch atomic.Bool
}

// downFetch wraps fetch so that the store fails from the moment the token
// request is made while st.failInFetch is set.
func downFetch(st *failingPut, fetch FetchFunc) FetchFunc {
	return func(ctx context.Context, r *Refresh) (*Result, error) {
		if st.failInFetch.Load() {
			st.fail.Store(true)
		}
		return fetch(ctx, r)
	}
}

var errPut = errors.New("test store: disk full")

func (f *failingPut) Update(ctx context.Context, key string, fn func(context.Context, tokenstore.Tx) error) error {
	return hookedUpdate(ctx, &f.Memory, f, key, fn)
}

func (f *failingPut) hookPut(ctx context.Context, next tokenstore.Tx, v []byte) error {
	if f.fail.Load() {
		return errPut
	}
	return next.Put(ctx, v)
}

// TestRotationKeptWhenStoreFails: a rotated refresh token that the store
// cannot take is kept in memory and used next (never the spent one), and
// written as soon as the store works again (S23).
func TestRotationKeptWhenStoreFails(t *testing.T) {
	clk := newClock()
	srv := newTokenServer(clk.Now)
	st := &failingPut{}
	saveRT(t, st, "k", "rt-0")
	st.failInFetch.Store(true)
	s, err := NewSource(SourceConfig{Store: st, Key: "k", Fetch: downFetch(st, asFetch(srv.refresh)),
		Now: clk.Now}, &oauth2.Token{AccessToken: "at-old", Expiry: clk.Now().Add(-time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Token()
	var te *tokenstore.TemporaryError
	if !errors.Is(err, errPut) || !errors.As(err, &te) || tok != nil {
		t.Fatalf("Token with a failing store = %v, %v; want a *TemporaryError with the store error", tok, err)
	}
	if got := storedRT(t, st); got != "rt-0" {
		t.Fatalf("store holds %q, want the old token kept", got)
	}
	// Still failing after the backoff: the rotation held in memory cannot
	// be written, and no request is made (neither with the spent token nor
	// with the rotated one, whose successor could not be stored either).
	clk.Advance(time.Hour)
	st.failInFetch.Store(false)
	if _, err := s.Token(); !errors.Is(err, errPut) {
		t.Fatalf("second Token = %v", err)
	}
	// The store recovers: the newest refresh token is saved first.
	st.fail.Store(false)
	clk.Advance(time.Hour)
	tok, err = s.Token()
	if err != nil {
		t.Fatal(err)
	}
	requests, reuse, uses, current := srv.stats()
	if requests != 2 || reuse != 0 {
		t.Fatalf("server saw %d requests, %d reuses; want 2, 0", requests, reuse)
	}
	for rt, n := range uses {
		if n != 1 {
			t.Fatalf("refresh token %s sent %d times", rt, n)
		}
	}
	if got := storedRT(t, st); got != current {
		t.Fatalf("store holds %q, want %q", got, current)
	}
	if tok.AccessToken == "at-old" {
		t.Fatal("old token returned")
	}
}

func TestOnRecordChangeSeesStoredRecord(t *testing.T) {
	var calls int
	var st *tokenstore.Memory
	s, srv, _, clk := setup(t, func(c *SourceConfig) {
		st = c.Store.(*tokenstore.Memory)
		c.OnRecordChange = func(ctx context.Context, rec *Record) error {
			calls++
			if got, _ := LoadRecord(ctx, st, "k"); got == nil || got.RefreshToken != rec.RefreshToken {
				return fmt.Errorf("hook ran before the store had the new refresh token")
			}
			if calls == 1 {
				return errors.New("app store down")
			}
			return nil
		}
	})
	if _, err := s.Token(); err == nil {
		t.Fatal("hook error not reported")
	}
	clk.Advance(time.Hour)
	tok, err := s.Token()
	if err != nil {
		t.Fatal(err)
	}
	requests, reuse, _, _ := srv.stats()
	if calls != 2 || requests != 2 || reuse != 0 || tok.AccessToken == "at-old" {
		t.Fatalf("hook calls %d, requests %d, reuse %d; want 2, 2, 0", calls, requests, reuse)
	}
}

// TestMemoryOnlySourceReportsRotations: with Store nil, OnRecordChange is
// the application's persistence and sees every rotation.
func TestMemoryOnlySourceReportsRotations(t *testing.T) {
	clk := newClock()
	srv := newTokenServer(clk.Now)
	var seen []string
	s, err := NewSource(SourceConfig{Record: &Record{RefreshToken: "rt-0"}, Fetch: asFetch(srv.refresh), Now: clk.Now,
		OnRecordChange: func(_ context.Context, rec *Record) error { seen = append(seen, rec.RefreshToken); return nil }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := s.Token(); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Hour)
	}
	_, reuse, uses, current := srv.stats()
	if reuse != 0 || len(seen) != 3 || seen[2] != current || len(uses) != 3 {
		t.Fatalf("seen %v, reuse %d, uses %v", seen, reuse, uses)
	}
}

func TestInvalidGrantWipesStoredToken(t *testing.T) {
	s, srv, st, _ := setup(t, nil)
	srv.current = "rt-server-forgot-us"
	_, err := s.Token()
	if !errors.Is(err, tokenstore.ErrLoginRequired) {
		t.Fatalf("Token = %v, want ErrLoginRequired", err)
	}
	if _, err := st.Get(context.Background(), "k"); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("stored refresh token not deleted: %v", err)
	}
	if _, err := s.Token(); !errors.Is(err, tokenstore.ErrLoginRequired) {
		t.Fatalf("second Token = %v", err)
	}
	if requests, _, _, _ := srv.stats(); requests != 1 {
		t.Fatalf("%d requests; the dead refresh token was sent again", requests)
	}
}

func TestTemporaryErrorKeepsTokenAndBacksOff(t *testing.T) {
	s, srv, st, clk := setup(t, nil)
	srv.fail = errServer
	_, err := s.Token()
	var te *tokenstore.TemporaryError
	if !errors.As(err, &te) || !errors.Is(err, errServer) {
		t.Fatalf("Token = %v, want *TemporaryError wrapping the cause", err)
	}
	if got := storedRT(t, st); got != "rt-0" {
		t.Fatalf("stored token %q, want rt-0 kept", got)
	}
	for i := 0; i < 100; i++ {
		if _, err := s.Token(); !errors.As(err, &te) {
			t.Fatalf("during backoff Token = %v", err)
		}
	}
	if requests, _, _, _ := srv.stats(); requests != 1 {
		t.Fatalf("%d requests during backoff, want 1 (no hammering)", requests)
	}
	clk.Advance(te.RetryAfter.Sub(clk.Now()) + time.Millisecond)
	_, err = s.Token()
	if !errors.As(err, &te) {
		t.Fatalf("after backoff Token = %v", err)
	}
	first := te.RetryAfter
	if requests, _, _, _ := srv.stats(); requests != 2 {
		t.Fatalf("%d requests after the backoff, want 2", requests)
	}
	if d := first.Sub(clk.Now()); d <= time.Second {
		t.Fatalf("backoff did not grow: %v", d)
	}
	srv.mu.Lock()
	srv.fail = nil
	srv.mu.Unlock()
	clk.Advance(time.Hour)
	if _, err := s.Token(); err != nil {
		t.Fatalf("after recovery Token = %v", err)
	}
	if _, reuse, _, _ := srv.stats(); reuse != 0 {
		t.Fatal("reuse reported")
	}
}

// TestRotatedElsewhereIsPickedUp: two Sources (as two processes would) hold
// the same refresh token in memory; after one rotates it, the other must
// re-read the store and never send the spent one.
func TestRotatedElsewhereIsPickedUp(t *testing.T) {
	clk := newClock()
	srv := newTokenServer(clk.Now)
	st := &tokenstore.Memory{}
	saveRT(t, st, "k", "rt-0")
	mk := func() *Source {
		s, err := NewSource(SourceConfig{Store: st, Key: "k", Fetch: asFetch(srv.refresh), Now: clk.Now},
			&oauth2.Token{AccessToken: "at-old", RefreshToken: "rt-0", Expiry: clk.Now().Add(-time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := mk(), mk()
	ta, err := a.Token()
	if err != nil {
		t.Fatal(err)
	}
	tb, err := b.Token()
	if err != nil {
		t.Fatalf("second source: %v", err)
	}
	requests, reuse, uses, current := srv.stats()
	if reuse != 0 || uses["rt-0"] != 1 {
		t.Fatalf("reuse %d, rt-0 sent %d times; a refresh token was spent twice", reuse, uses["rt-0"])
	}
	for rt, n := range uses {
		if n != 1 {
			t.Fatalf("refresh token %q sent %d times", rt, n)
		}
	}
	if requests != 2 || ta.AccessToken == tb.AccessToken || storedRT(t, st) != current {
		t.Fatalf("requests %d, store %q current %q", requests, storedRT(t, st), current)
	}
}

func TestNoRotationKeepsRefreshToken(t *testing.T) {
	s, srv, st, clk := setup(t, nil)
	srv.noRotate = true
	for i := 0; i < 3; i++ {
		if _, err := s.Token(); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Hour)
	}
	if got := storedRT(t, st); got != "rt-0" {
		t.Fatalf("store %q", got)
	}
}

func TestNoExpiryIsShortLived(t *testing.T) {
	clk := newClock()
	srv := newTokenServer(clk.Now)
	st := &tokenstore.Memory{}
	saveRT(t, st, "k", "rt-0")
	s, _ := NewSource(SourceConfig{Store: st, Key: "k", Fetch: asFetch(srv.refresh), Now: clk.Now},
		&oauth2.Token{AccessToken: "at-forever", RefreshToken: "rt-0"})
	tok, err := s.Token()
	if err != nil || tok.AccessToken != "at-forever" {
		t.Fatal(tok, err)
	}
	if want := clk.Now().Add(5 * time.Minute); !tok.Expiry.Equal(want) {
		t.Fatalf("Expiry = %v, want %v (DefaultLifetime)", tok.Expiry, want)
	}
	clk.Advance(5 * time.Minute)
	tok, err = s.Token()
	if err != nil || tok.AccessToken == "at-forever" {
		t.Fatalf("a token without expiry was served forever: %v, %v", tok, err)
	}
}

func TestReturnedTokensCarryNoRefreshToken(t *testing.T) {
	s, _, _, _ := setup(t, nil)
	t1, err := s.Token()
	if err != nil {
		t.Fatal(err)
	}
	if t1.RefreshToken != "" {
		t.Fatal("returned token carries the refresh token")
	}
	t2, _ := s.Token()
	if t2.RefreshToken != "" || t2.AccessToken != t1.AccessToken {
		t.Fatal("second token differs or carries the refresh token")
	}
}

func TestInvalidate(t *testing.T) {
	s, srv, _, _ := setup(t, nil)
	t1, _ := s.Token()
	stale := &oauth2.Token{AccessToken: "at-old"}
	s.Invalidate(stale) // not current: nothing happens
	if t2, _ := s.Token(); t2.AccessToken != t1.AccessToken {
		t.Fatal("stale Invalidate dropped the current token")
	}
	s.Invalidate(t1)
	t3, err := s.Token()
	if err != nil || t3.AccessToken == t1.AccessToken {
		t.Fatalf("after Invalidate got %v, %v", t3, err)
	}
	if requests, reuse, _, _ := srv.stats(); requests != 2 || reuse != 0 {
		t.Fatalf("requests %d reuse %d", requests, reuse)
	}
}

func TestLoginRequiredWhenNothingStored(t *testing.T) {
	clk := newClock()
	srv := newTokenServer(clk.Now)
	s, _ := NewSource(SourceConfig{Store: &tokenstore.Memory{}, Key: "k", Fetch: asFetch(srv.refresh), Now: clk.Now}, nil)
	if _, err := s.Token(); !errors.Is(err, tokenstore.ErrLoginRequired) {
		t.Fatalf("Token = %v", err)
	}
	if requests, _, _, _ := srv.stats(); requests != 0 {
		t.Fatal("refreshed with a refresh token that is not in the store")
	}
}

func TestWaitHonoursContext(t *testing.T) {
	s, srv, _, _ := setup(t, nil)
	srv.gate = make(chan struct{})
	defer close(srv.gate)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.TokenContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("TokenContext = %v, want DeadlineExceeded", err)
	}
}

func TestNewSourceValidates(t *testing.T) {
	f := func(context.Context, *Refresh) (*Result, error) { return nil, nil }
	for _, cfg := range []SourceConfig{{}, {Fetch: f, Store: &tokenstore.Memory{}}, {Fetch: f, Margin: -1}} {
		if _, err := NewSource(cfg, nil); !errors.Is(err, oauthsafe.ErrConfig) {
			t.Errorf("NewSource(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
	// The zero Source answers with a typed error, never a panic.
	var zero Source
	if _, err := zero.Token(); !errors.Is(err, oauthsafe.ErrConfig) {
		t.Errorf("zero Source Token = %v, want ErrConfig", err)
	}
	zero.Invalidate(&oauth2.Token{AccessToken: "x"})
	if zero.Scopes() != nil {
		t.Error("zero Source has scopes")
	}
}

func BenchmarkTokenSourceHot(b *testing.B) {
	tok := &oauth2.Token{AccessToken: "at-bench", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}
	s, err := NewSource(SourceConfig{Fetch: func(context.Context, *Refresh) (*Result, error) {
		return nil, errors.New("no refresh in the benchmark")
	}}, tok)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Token(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkXOAuth2ReuseTokenSource(b *testing.B) {
	tok := &oauth2.Token{AccessToken: "at-bench", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}
	s := oauth2.ReuseTokenSource(tok, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Token(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestExpiryComparedOnWallClock(t *testing.T) {
	s, err := NewSource(SourceConfig{Fetch: func(context.Context, *Refresh) (*Result, error) { return nil, errServer }},
		&oauth2.Token{AccessToken: "a", Expiry: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	e := s.cur.Load()
	for _, tm := range []time.Time{e.tok.Expiry, e.refreshAt, e.blockAt} {
		if strings.Contains(tm.String(), " m=") {
			t.Fatalf("%v carries a monotonic reading; suspend would stop it", tm)
		}
	}
}

// within fails the test if f does not return within limit: the point is
// "no hang", not speed.
func within[T any](t *testing.T, limit time.Duration, f func() T) T {
	t.Helper()
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	select {
	case v := <-ch:
		return v
	case <-time.After(limit):
		t.Fatalf("call hung for more than %v", limit)
		panic("unreachable")
	}
}

// TestRotationSavedAfterRefreshTimeout: a 200 response rotated the refresh
// token, then the refresh ran out of time (a slow check of the response).
// The rotation is written to the Store all the same, so a new process does
// not send the spent token again (S23).
func TestRotationSavedAfterRefreshTimeout(t *testing.T) {
	clk := newClock()
	for _, tc := range []struct {
		name string
		st   func(t *testing.T) tokenstore.Store
	}{
		{"Memory", func(*testing.T) tokenstore.Store { return &tokenstore.Memory{} }},
		{"EncryptedFile", func(t *testing.T) tokenstore.Store { return newTestFile(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.st(t)
			saveRT(t, st, "k", "rt-0")
			var changed []string
			s, err := NewSource(SourceConfig{Store: st, Key: "k", Now: clk.Now, RefreshTimeout: 300 * time.Millisecond,
				OnRecordChange: func(ctx context.Context, rec *Record) error {
					changed = append(changed, rec.RefreshToken)
					return ctx.Err()
				},
				Fetch: func(ctx context.Context, r *Refresh) (*Result, error) {
					r.Rotated("rt-1")
					<-ctx.Done() // the response's checks outlast the refresh's time
					return nil, ctx.Err()
				}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Token()
			var te *tokenstore.TemporaryError
			if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Token = %v, want a *TemporaryError for the timeout", err)
			}
			if got := storedRT(t, st); got != "rt-1" {
				t.Fatalf("store holds %q after the timeout, want the rotated rt-1", got)
			}
			if len(changed) != 1 || changed[0] != "rt-1" {
				t.Fatalf("OnRecordChange saw %v, want [rt-1]", changed)
			}
		})
	}
}

// TestOnRecordChangeSeesDelayedWrite: a rotation the Store could not take
// is written at the start of the next refresh; OnRecordChange hears of it
// then, also when that refresh brings no new rotation.
func TestOnRecordChangeSeesDelayedWrite(t *testing.T) {
	clk := newClock()
	srv := newTokenServer(clk.Now)
	st := &failingPut{}
	saveRT(t, st, "k", "rt-0")
	st.failInFetch.Store(true)
	var seen []string
	s, err := NewSource(SourceConfig{Store: st, Key: "k", Fetch: downFetch(st, asFetch(srv.refresh)), Now: clk.Now,
		OnRecordChange: func(ctx context.Context, rec *Record) error {
			if got, _ := LoadRecord(ctx, st, "k"); got == nil || got.RefreshToken != rec.RefreshToken {
				return errors.New("hook ran before the store had the record")
			}
			seen = append(seen, rec.RefreshToken)
			return nil
		}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Token(); !errors.Is(err, errPut) {
		t.Fatalf("Token with a failing store = %v", err)
	}
	_, _, _, rotated := srv.stats()
	if len(seen) != 0 {
		t.Fatalf("OnRecordChange saw %v before the record was stored", seen)
	}
	st.failInFetch.Store(false)
	st.fail.Store(false)
	srv.mu.Lock()
	srv.noRotate = true
	srv.mu.Unlock()
	clk.Advance(time.Hour)
	if _, err := s.Token(); err != nil {
		t.Fatal(err)
	}
	if got := storedRT(t, st); got != rotated {
		t.Fatalf("store holds %q, want %q", got, rotated)
	}
	if len(seen) != 1 || seen[0] != rotated {
		t.Fatalf("OnRecordChange saw %v, want [%s] (the delayed write)", seen, rotated)
	}
}

// TestSourceLogger: SourceConfig.Logger gets one event per refresh: debug
// with outcome "ok" on success, warn with the outcome class on failure
// (temporary, login_required), each naming the store key's first 8
// characters; never a refresh or access token.
func TestSourceLogger(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clk := newClock()
	srv := newTokenServer(clk.Now)
	st := &tokenstore.Memory{}
	saveRT(t, st, "k-0123456789abcdef", "rt-0")
	s, err := NewSource(SourceConfig{Store: st, Key: "k-0123456789abcdef", Fetch: asFetch(srv.refresh), Now: clk.Now, Logger: logger}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Token()
	if err != nil {
		t.Fatal(err)
	}
	srv.fail = errServer
	clk.Advance(2 * time.Hour)
	s.Token()
	out := buf.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "level=DEBUG") || !strings.Contains(lines[0], "outcome=ok") ||
		!strings.Contains(lines[1], "level=WARN") || !strings.Contains(lines[1], "outcome=temporary") {
		t.Fatalf("log:\n%s", out)
	}
	for _, l := range lines {
		if !strings.Contains(l, "key=k-012345 ") && !strings.HasSuffix(l, "key=k-012345") {
			t.Errorf("the event does not name the key's first 8 characters: %s", l)
		}
	}
	_, _, _, current := srv.stats()
	for _, secret := range []string{tok.AccessToken, current, "rt-0", "k-0123456789abcdef"} {
		if strings.Contains(out, secret) {
			t.Fatalf("the log holds %q", secret)
		}
	}
}

// TestMarkerClearedAfterFailedWrite (S29): the store goes down after the
// request left and the server did not rotate: the write that clears the
// pending marker fails. The outcome is kept in the process and written by
// the next refresh, so this process's own marker never reads as an
// interrupted refresh (no ErrRotationLost, no logout) once the store is
// back.
func TestMarkerClearedAfterFailedWrite(t *testing.T) {
	clk := newClock()
	srv := newTokenServer(clk.Now)
	srv.noRotate = true
	st := &failingPut{}
	saveRT(t, st, "k", "rt-0")
	st.failInFetch.Store(true)
	s, err := NewSource(SourceConfig{Store: st, Key: "k", Fetch: downFetch(st, asFetch(srv.refresh)), Now: clk.Now}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var te *tokenstore.TemporaryError
	if _, err := s.Token(); !errors.As(err, &te) {
		t.Fatalf("Token with the store down after the request = %v, want a *TemporaryError", err)
	}
	st.failInFetch.Store(false)
	st.fail.Store(false)
	clk.Advance(time.Hour)
	if _, err := s.Token(); err != nil {
		t.Fatalf("after the store came back: %v (the process's own marker must not log the user out)", err)
	}
	rec, err := LoadRecord(context.Background(), st, "k")
	if err != nil || rec.pending != 0 || rec.RefreshToken != "rt-0" {
		t.Fatalf("record after recovery: %v (pending %d), %v", rec, rec.pending, err)
	}
}

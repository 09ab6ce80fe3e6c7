package engine

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/tokenstore"

	"golang.org/x/oauth2"
)

// errNetwork is a transport failure after the request left: no answer.
var errNetwork = Transient(errors.New("test transport: connection reset by peer"))

// markedRecord stores a record for key holding rt whose refresh began at
// began and whose request surely ended at ended, as a holder killed with
// its request in flight leaves it.
func markedRecord(t *testing.T, st tokenstore.Store, key, rt string, began, ended time.Time) {
	t.Helper()
	b, err := encodeRecord(&Record{RefreshToken: rt, Subject: "alice", Issuer: "https://issuer", ClientID: "client",
		pending: began.UnixMilli(), pendingUntil: ended.UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(context.Background(), key, func(ctx context.Context, tx tokenstore.Tx) error { return tx.Put(ctx, b) }); err != nil {
		t.Fatal(err)
	}
}

func loadMarked(t *testing.T, st tokenstore.Store, key string) *Record {
	t.Helper()
	rec, err := LoadRecord(context.Background(), st, key)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// activeDouble is the test double of the introspection step: it answers
// what it is told and counts its calls.
type activeDouble struct {
	calls  atomic.Int32
	active bool
	err    error
}

func (d *activeDouble) check(_ context.Context, rt string) (bool, error) {
	d.calls.Add(1)
	return d.active, d.err
}

// TestResolveMarkerStep: a record left marked by a dead holder, with the
// introspection step as a double. Active: the user keeps working with one
// request; inactive: ErrRotationLost without a request; refused: as
// without the step (ErrRotationLost, or a resend within ReuseGrace); no
// answer (a temporary failure): a *TemporaryError, asked again after a
// backoff, for a minute, then as without the step (S24); a marked request too recent to ask
// about: a *TemporaryError until it may be asked, without a question or a
// request.
func TestResolveMarkerStep(t *testing.T) {
	errRefused := errors.New("test introspection: 401 invalid_client")
	errTimeout := errors.New("test introspection: timeout")
	for _, tc := range []struct {
		name      string
		active    bool
		introErr  error
		grace     time.Duration
		age       time.Duration // since the marked request ended
		wantErr   error
		wantCalls int32
		wantSent  int
	}{
		{name: "active", active: true, age: time.Minute, wantCalls: 1, wantSent: 1},
		{name: "inactive", age: time.Minute, wantErr: ErrRotationLost, wantCalls: 1},
		{name: "refused", introErr: errRefused, age: time.Minute, wantErr: ErrRotationLost, wantCalls: 1},
		{name: "refused within grace", introErr: errRefused, grace: time.Hour, age: time.Minute, wantCalls: 1, wantSent: 1},
		{name: "inactive within grace", grace: time.Hour, age: time.Minute, wantCalls: 1, wantSent: 1},
		{name: "too recent", active: true, age: time.Second, wantErr: errMarkerYoung},
		{name: "no answer", introErr: Transient(errTimeout), age: time.Minute, wantErr: errTimeout, wantCalls: 1},
		{name: "no answer for too long", introErr: Transient(errTimeout), age: 2 * time.Minute, wantErr: ErrRotationLost, wantCalls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			srv := newTokenServer(clk.Now)
			st := &tokenstore.Memory{}
			key := "resolve-" + tc.name
			markedRecord(t, st, key, "rt-0", clk.Now().Add(-tc.age-time.Second), clk.Now().Add(-tc.age))
			d := &activeDouble{active: tc.active, err: tc.introErr}
			s, err := NewSource(SourceConfig{Store: st, Key: key, Fetch: asFetch(srv.refresh), Now: clk.Now,
				ReuseGrace: tc.grace, ResolveMarkersByIntrospection: d.check}, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Token()
			if tc.wantErr == nil && err != nil || !errors.Is(err, tc.wantErr) {
				t.Fatalf("Token = %v, want %v", err, tc.wantErr)
			}
			if got := d.calls.Load(); got != tc.wantCalls {
				t.Fatalf("%d introspections, want %d", got, tc.wantCalls)
			}
			if requests, reuse, _, _ := srv.stats(); requests != tc.wantSent || reuse != 0 {
				t.Fatalf("%d token requests (%d reuses), want %d", requests, reuse, tc.wantSent)
			}
			rec := loadMarked(t, st, key)
			if tc.wantErr == nil && (rec.pending != 0 || rec.RefreshToken == "rt-0") {
				t.Fatalf("after the resolved refresh the record is %v, pending %d", rec, rec.pending)
			}
			var te *tokenstore.TemporaryError
			if errors.Is(tc.wantErr, errTimeout) {
				// S24: asked again only after a backoff, and for a bounded time.
				if !errors.As(err, &te) || !te.RetryAfter.After(clk.Now()) {
					t.Fatalf("no answer: %v, want a *TemporaryError with a backoff (asked again later)", err)
				}
				if _, err := s.Token(); d.calls.Load() != 1 || !errors.As(err, &te) {
					t.Fatalf("during the backoff: %v, %d introspections", err, d.calls.Load())
				}
			}
			if errors.Is(tc.wantErr, errMarkerYoung) {
				if !errors.As(err, &te) || !te.RetryAfter.Equal(clk.Now().Add(-tc.age).Add(markerSettle).Truncate(time.Millisecond)) {
					t.Fatalf("too recent: %v, want a *TemporaryError until the request ended + %v", err, markerSettle)
				}
				// Once it may be asked, it is: the user keeps working.
				clk.Advance(te.RetryAfter.Sub(clk.Now()))
				if _, err := s.Token(); err != nil || d.calls.Load() != 1 {
					t.Fatalf("after the wait: %v, %d introspections", err, d.calls.Load())
				}
			}
		})
	}
}

// TestNoRotationClearsMarker (S29): the server answered without rotating
// (a 503). The marker is cleared with the outcome; when that write is
// refused because the lease was lost, the outcome is kept for the process
// as the error says, and this process's next refresh writes it and goes
// on, instead of reading its own marker as a lost rotation.
func TestNoRotationClearsMarker(t *testing.T) {
	t.Run("written", func(t *testing.T) {
		s, srv, st, _ := setup(t, nil)
		srv.fail = errServer
		var te *tokenstore.TemporaryError
		if _, err := s.Token(); !errors.As(err, &te) {
			t.Fatalf("Token on a 503 = %v", err)
		}
		if rec := loadMarked(t, st, "k"); rec.pending != 0 || rec.RefreshToken != "rt-0" {
			t.Fatalf("after a 503 the record is %v, pending %d; want rt-0 unmarked", rec, rec.pending)
		}
	})
	t.Run("lease lost", func(t *testing.T) {
		clk := newClock()
		srv := newTokenServer(clk.Now)
		st := &lockedPut{}
		saveRT(t, st, "no-rotation", "rt-0")
		s, err := NewSource(SourceConfig{Store: st, Key: "no-rotation", Now: clk.Now,
			Fetch: func(ctx context.Context, r *Refresh) (*Result, error) {
				defer st.lost.Store(st.failNext.Load()) // the lease is lost while the server answers
				return asFetch(srv.refresh)(ctx, r)
			}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		srv.fail = errServer
		st.failNext.Store(true)
		_, err = s.Token()
		var te *tokenstore.TemporaryError
		if !errors.As(err, &te) || !errors.Is(err, errServer) || !errors.Is(err, tokenstore.ErrLocked) {
			t.Fatalf("Token on a 503 with the lease lost = %v", err)
		}
		if rec := loadMarked(t, st, "no-rotation"); rec.pending == 0 {
			t.Fatal("the marker was cleared although the write was refused")
		}
		// The store works again and the server too.
		st.failNext.Store(false)
		st.lost.Store(false)
		srv.mu.Lock()
		srv.fail = nil
		srv.mu.Unlock()
		clk.Advance(time.Hour)
		if _, err := s.Token(); err != nil {
			t.Fatalf("the next refresh of the process that was answered = %v; the error said the outcome was kept", err)
		}
		if requests, reuse, _, _ := srv.stats(); requests != 2 || reuse != 0 {
			t.Fatalf("%d requests, %d reuses", requests, reuse)
		}
		if rec := loadMarked(t, st, "no-rotation"); rec.pending != 0 {
			t.Fatal("marker left")
		}
	})
}

// lockedPut is a Store whose Tx.Put answers ErrLocked (a lease surely
// lost) while lost is set.
type lockedPut struct {
	tokenstore.Memory
	lost, failNext atomic.Bool
}

func (f *lockedPut) Update(ctx context.Context, key string, fn func(context.Context, tokenstore.Tx) error) error {
	return hookedUpdate(ctx, &f.Memory, f, key, fn)
}

func (f *lockedPut) hookPut(ctx context.Context, next tokenstore.Tx, v []byte) error {
	if f.lost.Load() {
		return fmt.Errorf("test store: lease lost: %w", tokenstore.ErrLocked)
	}
	return next.Put(ctx, v)
}

// TestReuseGraceClearsMarker: a record left marked by a dead holder is
// refreshed again within ReuseGrace; the successful resend clears the
// marker, so the user is not logged out once the grace period has passed.
func TestReuseGraceClearsMarker(t *testing.T) {
	clk := newClock()
	srv := newTokenServer(clk.Now)
	st := &tokenstore.Memory{}
	markedRecord(t, st, "grace", "rt-0", clk.Now().Add(-10*time.Second), clk.Now().Add(-5*time.Second))
	s, err := NewSource(SourceConfig{Store: st, Key: "grace", Fetch: asFetch(srv.refresh), Now: clk.Now,
		ReuseGrace: time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Token()
	if err != nil {
		t.Fatalf("within the grace period: %v", err)
	}
	if rec := loadMarked(t, st, "grace"); rec.pending != 0 || rec.pendingUntil != 0 {
		t.Fatalf("the resend's record keeps the marker (pending %d)", rec.pending)
	}
	clk.Advance(2 * time.Hour) // past the grace period and the token's life
	s.Invalidate(tok)
	if _, err := s.Token(); err != nil {
		t.Fatalf("after the grace period: %v", err)
	}
	if requests, reuse, _, _ := srv.stats(); requests != 2 || reuse != 0 {
		t.Fatalf("%d requests, %d reuses; want 2, 0", requests, reuse)
	}
}

// TestTransportFailureKeepsMarker (S23, S29): the request left and no
// answer came (a reset connection, a timeout): the server may have
// rotated. The marker stays and the stored token is never sent again
// blindly: without the introspection step the next refresh reports
// ErrRotationLost; with it, once the request has surely ended, the
// provider is asked and an active token is refreshed. A failure before
// the request left (a refused dial: no Sent) clears the marker and the
// next refresh sends the token.
func TestTransportFailureKeepsMarker(t *testing.T) {
	failing := func(srv *tokenServer, sent bool, fail *atomic.Bool) FetchFunc {
		return func(ctx context.Context, r *Refresh) (*Result, error) {
			if fail.Load() {
				if sent {
					r.Sent()
					return nil, errNetwork
				}
				return nil, Transient(errors.New("test transport: connection refused"))
			}
			return asFetch(srv.refresh)(ctx, r)
		}
	}
	t.Run("reported", func(t *testing.T) {
		clk := newClock()
		srv := newTokenServer(clk.Now)
		st := &tokenstore.Memory{}
		saveRT(t, st, "transport", "rt-0")
		var fail atomic.Bool
		fail.Store(true)
		s, err := NewSource(SourceConfig{Store: st, Key: "transport", Fetch: failing(srv, true, &fail), Now: clk.Now}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var te *tokenstore.TemporaryError
		if _, err := s.Token(); !errors.As(err, &te) || !errors.Is(err, errNetwork) {
			t.Fatalf("Token on a transport failure = %v", err)
		}
		if rec := loadMarked(t, st, "transport"); rec.pending == 0 {
			t.Fatal("the marker was cleared after a request with no answer")
		}
		fail.Store(false)
		clk.Advance(time.Hour)
		if _, err := s.Token(); !errors.Is(err, ErrRotationLost) {
			t.Fatalf("the next refresh = %v, want ErrRotationLost (no blind resend)", err)
		}
		if requests, _, _, _ := srv.stats(); requests != 0 {
			t.Fatalf("%d requests reached the server after the failure; the token was resent blindly", requests)
		}
	})
	t.Run("resolved", func(t *testing.T) {
		clk := newClock()
		srv := newTokenServer(clk.Now)
		st := &tokenstore.Memory{}
		saveRT(t, st, "transport-resolved", "rt-0")
		var fail atomic.Bool
		fail.Store(true)
		d := &activeDouble{active: true}
		s, err := NewSource(SourceConfig{Store: st, Key: "transport-resolved", Fetch: failing(srv, true, &fail), Now: clk.Now,
			ResolveMarkersByIntrospection: d.check}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Token(); err == nil {
			t.Fatal("no error")
		}
		fail.Store(false)
		// The backoff ends before the request is settled: no question yet.
		clk.Advance(2 * time.Second)
		_, err = s.Token()
		var te *tokenstore.TemporaryError
		if !errors.As(err, &te) || !errors.Is(err, errMarkerYoung) || d.calls.Load() != 0 {
			t.Fatalf("right after the failure: %v, %d introspections", err, d.calls.Load())
		}
		clk.Advance(te.RetryAfter.Sub(clk.Now()))
		if _, err := s.Token(); err != nil {
			t.Fatalf("once settled, with the token active: %v", err)
		}
		if requests, reuse, _, _ := srv.stats(); requests != 1 || reuse != 0 || d.calls.Load() != 1 {
			t.Fatalf("%d requests, %d reuses, %d introspections", requests, reuse, d.calls.Load())
		}
	})
	t.Run("never sent", func(t *testing.T) {
		clk := newClock()
		srv := newTokenServer(clk.Now)
		st := &tokenstore.Memory{}
		saveRT(t, st, "transport-unsent", "rt-0")
		var fail atomic.Bool
		fail.Store(true)
		s, err := NewSource(SourceConfig{Store: st, Key: "transport-unsent", Fetch: failing(srv, false, &fail), Now: clk.Now}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Token(); err == nil {
			t.Fatal("no error")
		}
		if rec := loadMarked(t, st, "transport-unsent"); rec.pending != 0 {
			t.Fatal("marker kept although the request never left")
		}
		fail.Store(false)
		clk.Advance(time.Hour)
		if _, err := s.Token(); err != nil {
			t.Fatalf("the next refresh: %v", err)
		}
	})
}

// slowSave is a Memory whose Put, once armed, advances the clock: a save
// that takes its time.
type slowSave struct {
	tokenstore.Memory
	clk   *fakeClock
	armed atomic.Bool
	by    time.Duration
}

func (f *slowSave) Update(ctx context.Context, key string, fn func(context.Context, tokenstore.Tx) error) error {
	return hookedUpdate(ctx, &f.Memory, f, key, fn)
}

func (f *slowSave) hookPut(ctx context.Context, next tokenstore.Tx, v []byte) error {
	if f.armed.Load() {
		f.clk.Advance(f.by)
	}
	return next.Put(ctx, v)
}

// TestExpiryMarginFromIssueTime: the server issues a 20 s access token;
// its answer takes 2 s and the save of the rotation 6 s. The token's
// expiry counts from the time before the request (20 s after it, not 20 s
// after the answer), and the refresh margins from its whole lifetime:
// background refresh from 10 s, callers wait from 15 s, whatever the save
// took. Nothing is served that the server already counts as expired.
func TestExpiryMarginFromIssueTime(t *testing.T) {
	clk := newClock()
	st := &slowSave{clk: clk, by: 6 * time.Second}
	saveRT(t, st, "issue", "rt-0")
	n := 0
	s, err := NewSource(SourceConfig{Store: st, Key: "issue", Now: clk.Now,
		Fetch: func(ctx context.Context, r *Refresh) (*Result, error) {
			r.Sent()
			clk.Advance(2 * time.Second) // the answer comes 2 s later
			n++
			r.Rotated(fmt.Sprintf("rt-%d", n))
			st.armed.Store(true)
			// As oauthclient computes it: now (at the answer) + expires_in.
			return &Result{Token: &oauth2.Token{AccessToken: "at", TokenType: "Bearer", ExpiresIn: 20,
				Expiry: clk.Now().Add(20 * time.Second)}}, nil
		}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	issued := clk.Now()
	tok, err := s.Token()
	if err != nil {
		t.Fatal(err)
	}
	if want := issued.Add(20 * time.Second); !tok.Expiry.Equal(want) {
		t.Fatalf("expiry %v after the request began, want 20s", tok.Expiry.Sub(issued))
	}
	e := s.cur.Load()
	if got := e.refreshAt.Sub(issued); got != 10*time.Second {
		t.Fatalf("background refresh from %v, want 10s (half of 20 s)", got)
	}
	if got := e.blockAt.Sub(issued); got != 15*time.Second {
		t.Fatalf("callers wait from %v, want 15s (a quarter of 20 s before expiry)", got)
	}
}

// unreadable is a Memory whose Tx, once armed, lets the next Put write
// and then fails it, and fails every Get and Put after that while blind:
// a marker write whose outcome cannot be read back.
type unreadable struct {
	tokenstore.Memory
	armed, blind atomic.Bool
}

func (f *unreadable) Update(ctx context.Context, key string, fn func(context.Context, tokenstore.Tx) error) error {
	return hookedUpdate(ctx, &f.Memory, f, key, fn)
}

func (f *unreadable) hookPut(ctx context.Context, next tokenstore.Tx, v []byte) error {
	if f.blind.Load() {
		return fmt.Errorf("test store: unreachable: %w", tokenstore.ErrUnavailable)
	}
	if f.armed.CompareAndSwap(true, false) {
		next.Put(ctx, v)
		f.blind.Store(true)
		return fmt.Errorf("test store: reply lost: %w", tokenstore.ErrUnavailable)
	}
	return next.Put(ctx, v)
}

func (f *unreadable) hookGet(ctx context.Context, next tokenstore.Tx) ([]byte, error) {
	if f.blind.Load() {
		return nil, fmt.Errorf("test store: unreachable: %w", tokenstore.ErrUnavailable)
	}
	return next.Get(ctx)
}

// TestMarkerUnreadAfterLostAck (S29): the marker write landed but neither
// its acknowledgement nor a read-back came. The request is not sent (a
// *TemporaryError); the marker left in the store is this process's own,
// for a request never sent: its next refresh clears it and refreshes,
// with one request, instead of reporting ErrRotationLost.
func TestMarkerUnreadAfterLostAck(t *testing.T) {
	clk := newClock()
	srv := newTokenServer(clk.Now)
	st := &unreadable{}
	saveRT(t, st, "unread", "rt-0")
	s, err := NewSource(SourceConfig{Store: st, Key: "unread", Now: clk.Now, Fetch: asFetch(srv.refresh)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.armed.Store(true)
	var te *tokenstore.TemporaryError
	if _, err := s.Token(); !errors.As(err, &te) {
		t.Fatalf("Token = %v, want a *TemporaryError", err)
	}
	if requests, _, _, _ := srv.stats(); requests != 0 {
		t.Fatal("the request was sent although the marker's write could not be settled")
	}
	st.blind.Store(false)
	if rec := loadMarked(t, st, "unread"); rec.pending == 0 {
		t.Fatal("the test store did not keep the marker")
	}
	clk.Advance(time.Hour)
	if _, err := s.Token(); err != nil {
		t.Fatalf("the next refresh = %v, want a token (the marker is this process's, for a request never sent)", err)
	}
	if requests, reuse, _, _ := srv.stats(); requests != 1 || reuse != 0 {
		t.Fatalf("%d requests, %d reuses", requests, reuse)
	}
}

// TestForeignMarkerNotCleared (S29): this process holds the clearing of
// its own marker, unwritten (its marker write could not be settled, or the
// outcome of an answered request could not be saved), and meanwhile
// another holder marked the record for a request with the same refresh
// token and died: that request reached the server, which rotated. This
// process must not write its held record over the other holder's marker
// and send the spent token again (the provider's reuse detection would
// revoke the grant): the other marker is resolved as any marker this
// process did not write, here ErrRotationLost without a request.
func TestForeignMarkerNotCleared(t *testing.T) {
	for _, how := range []string{"marker unread", "outcome unsaved"} {
		t.Run(how, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			srv := newTokenServer(clk.Now)
			var st tokenstore.Store
			var s *Source
			var err error
			switch how {
			case "marker unread":
				u := &unreadable{}
				st = u
				saveRT(t, u, "k", "rt-0")
				s, err = NewSource(SourceConfig{Store: u, Key: "k", Now: clk.Now, Fetch: asFetch(srv.refresh)}, nil)
				if err != nil {
					t.Fatal(err)
				}
				u.armed.Store(true)
				if _, err := s.Token(); err == nil {
					t.Fatal("Token with its marker write unsettled: no error")
				}
				u.blind.Store(false)
			case "outcome unsaved":
				l := &lockedPut{}
				st = l
				saveRT(t, l, "k", "rt-0")
				s, err = NewSource(SourceConfig{Store: l, Key: "k", Now: clk.Now,
					Fetch: func(ctx context.Context, r *Refresh) (*Result, error) {
						defer l.lost.Store(true) // the outcome's write fails
						return asFetch(srv.refresh)(ctx, r)
					}}, nil)
				if err != nil {
					t.Fatal(err)
				}
				srv.fail = errServer // answered: the server kept rt-0
				if _, err := s.Token(); err == nil {
					t.Fatal("Token on a 503: no error")
				}
				l.lost.Store(false)
				srv.mu.Lock()
				srv.fail = nil
				srv.mu.Unlock()
			}
			before, _, _, _ := srv.stats()
			// Another holder marks the record, sends rt-0 (the server
			// rotates) and dies before writing the outcome.
			clk.Advance(time.Hour)
			if _, err := srv.refresh(ctx, "rt-0"); err != nil {
				t.Fatal(err)
			}
			markedRecord(t, st, "k", "rt-0", clk.Now().Add(-20*time.Second), clk.Now().Add(-10*time.Second))

			_, err = s.Token()
			if !errors.Is(err, ErrRotationLost) {
				t.Fatalf("Token over another holder's marker = %v, want ErrRotationLost", err)
			}
			if requests, reuse, _, _ := srv.stats(); requests != before+1 || reuse != 0 {
				t.Fatalf("%d requests after the other holder's, %d reuses: the spent token was sent again", requests-before-1, reuse)
			}
			if rec := loadMarked(t, st, "k"); rec.pending == 0 {
				t.Fatal("the other holder's marker was cleared")
			}
		})
	}
}

// TestResolveMarkerBounds: what resolveMarker's and introspect's doc
// comments promise beyond TestResolveMarkerStep. A panicking introspection
// step is recovered as an error matching ErrPanic, a refusal: the Source
// behaves as without the step (ErrRotationLost, nothing sent) and the
// process lives on. One introspection is bounded by introspectTimeout. A
// marker of an earlier version (no pendingUntil) is resolved from its
// start plus RefreshTimeout plus markerSettle.
func TestResolveMarkerBounds(t *testing.T) {
	t.Run("panic", func(t *testing.T) {
		clk := newClock()
		srv := newTokenServer(clk.Now)
		st := &tokenstore.Memory{}
		markedRecord(t, st, "k", "rt-0", clk.Now().Add(-time.Hour), clk.Now().Add(-time.Hour))
		var deadline time.Duration
		s, err := NewSource(SourceConfig{Store: st, Key: "k", Fetch: asFetch(srv.refresh), Now: clk.Now,
			ResolveMarkersByIntrospection: func(ctx context.Context, rt string) (bool, error) {
				if d, ok := ctx.Deadline(); ok {
					deadline = time.Until(d)
				}
				panic("introspection bug")
			}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Token(); !errors.Is(err, ErrRotationLost) {
			t.Fatalf("Token with a panicking introspection = %v, want ErrRotationLost (as without the step)", err)
		}
		if requests, _, _, _ := srv.stats(); requests != 0 {
			t.Fatalf("%d token requests after a panicking introspection", requests)
		}
		if deadline <= 0 || deadline > introspectTimeout {
			t.Fatalf("the introspection's deadline is %v away, want within %v", deadline, introspectTimeout)
		}
	})
	t.Run("panic error", func(t *testing.T) {
		s := &Source{}
		_, err := s.introspect(context.Background(), func(context.Context, string) (bool, error) { panic(42) }, "rt")
		if !errors.Is(err, ErrPanic) || isTemporary(err) {
			t.Fatalf("introspect of a panicking step = %v, want a permanent error matching ErrPanic", err)
		}
	})
	t.Run("earlier version", func(t *testing.T) {
		clk := newClock()
		srv := newTokenServer(clk.Now)
		st := &tokenstore.Memory{}
		began := clk.Now().Add(-10 * time.Second)
		b, err := encodeRecord(&Record{RefreshToken: "rt-0", Subject: "alice", Issuer: "https://issuer", ClientID: "client",
			pending: began.UnixMilli()})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Update(context.Background(), "k", func(ctx context.Context, tx tokenstore.Tx) error { return tx.Put(ctx, b) }); err != nil {
			t.Fatal(err)
		}
		d := &activeDouble{active: true}
		s, err := NewSource(SourceConfig{Store: st, Key: "k", Fetch: asFetch(srv.refresh), Now: clk.Now,
			RefreshTimeout: 30 * time.Second, ResolveMarkersByIntrospection: d.check}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Token()
		var te *tokenstore.TemporaryError
		want := began.Add(30*time.Second + markerSettle).Truncate(time.Millisecond)
		if !errors.As(err, &te) || !te.RetryAfter.Equal(want) || d.calls.Load() != 0 {
			t.Fatalf("Token on a marker without its end = %v (%d introspections), want a *TemporaryError until %v", err, d.calls.Load(), want)
		}
		clk.Advance(te.RetryAfter.Sub(clk.Now()))
		if _, err := s.Token(); err != nil || d.calls.Load() != 1 {
			t.Fatalf("after the wait: %v, %d introspections", err, d.calls.Load())
		}
	})
}

package vault_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/tokenstore/sqlstore"
)

const (
	envUsers    = "OAUTHSAFE_VAULT_USERS"
	envRestarts = "OAUTHSAFE_VAULT_RESTARTS"
)

func userKey(i int) string { return fmt.Sprintf("user-%d", i) }

// usersReport is what one replica of the restart fleet saw.
type usersReport struct {
	Calls, Temporary int
	LoggedOut        []int  // users for which a call said a login is needed
	FirstLogout      string // the first such error
}

// TestFleetRestartChild is one replica of TestFleetPostgresRestartLosesNoUser:
// its own Client.UserPool on the vault (default lease), one goroutine per
// user asking for a token every 50 ms.
func TestFleetRestartChild(t *testing.T) {
	if os.Getenv(envFleet) != "users" {
		t.Skip("run by TestFleetPostgresRestartLosesNoUser")
	}
	ctx := context.Background()
	c, st := childClientAndStore(t, 0)
	users, err := c.UserPool(oauthclient.TokenSourceConfig{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(os.Getenv(envUsers))
	secs, _ := strconv.Atoi(os.Getenv(envSeconds))
	end := time.Now().Add(time.Duration(secs) * time.Second)
	var rep usersReport
	out := map[int]bool{}
	rep.Calls, rep.Temporary = askEvery50ms(ctx, t, users, n, end, func(i int, err error) {
		if !out[i] {
			out[i] = true
			rep.LoggedOut = append(rep.LoggedOut, i)
		}
		if rep.FirstLogout == "" {
			rep.FirstLogout = err.Error()
		}
	})
	b, _ := json.Marshal(rep)
	fmt.Printf("USERS %s\n", b)
}

// TestFleetPostgresRestartLosesNoUser (S29): 3 replica processes serve 20
// users from one PostgreSQL vault, against the real OP with rotation and
// family revocation on reuse (a spent refresh token presented again
// revokes the whole grant) and access tokens of 2 s. PostgreSQL is
// fast-stopped right after a refresh request reaches the OP (so the
// rotated token's write fails) and started again 0.5 s later, several
// times. No user is logged out and no refresh token is presented twice,
// counted at the server; after the run every user still refreshes.
// OAUTHSAFE_VAULT_SECONDS and OAUTHSAFE_VAULT_RESTARTS lengthen the run.
func TestFleetPostgresRestartLosesNoUser(t *testing.T) {
	if testing.Short() {
		t.Skip("fleet test in -short mode")
	}
	const users, replicas = 20, 3
	restarts := 3
	if n, err := strconv.Atoi(os.Getenv(envRestarts)); err == nil && n > 0 {
		restarts = n
	}
	secs := max(fleetSeconds(), 4*restarts+3) // the last 3 s without faults (faultsEnd)
	b := ownPostgres(t)
	srv, err := oauthtest.Start(oauthtest.Options{AccessTokenLifetime: 2 * time.Second, RevokeFamilyOnReuse: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	c, err := webClient(ctx, srv.Issuer, srv.RootCAs())
	if err != nil {
		t.Fatal(err)
	}
	st := b.store(t, sqlstore.Config{})
	loginUsers(t, c, st, srv, users)
	counter := countRefreshTokens(srv)

	// The fault: right after a refresh request reaches the OP (at most
	// every 3 s, restarts times), PostgreSQL is fast-stopped; the OP then
	// answers (rotating), and PostgreSQL comes back 0.5 s later. No fault
	// starts in the run's last 3 s: the replicas drain their pools (and
	// release their leases) when their time is up, and a database down
	// then fails the Drain, which is no part of what is tested.
	tokenPath := strings.TrimPrefix(srv.TokenURL, srv.Issuer)
	faultsEnd := time.Now().Add(time.Duration(secs)*time.Second - 3*time.Second)
	var pgMu sync.Mutex
	var done atomic.Int32
	var busy atomic.Bool
	var last atomic.Int64
	var restartErr error
	var restartWG sync.WaitGroup
	srv.SetInterceptor(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != tokenPath || int(done.Load()) >= restarts || time.Since(time.Unix(0, last.Load())) < 3*time.Second || time.Now().After(faultsEnd) {
			return false
		}
		if r.ParseForm() != nil || r.PostForm.Get("grant_type") != "refresh_token" || !busy.CompareAndSwap(false, true) {
			return false
		}
		pgMu.Lock()
		b.pg.Stop(false)
		pgMu.Unlock()
		restartWG.Add(1)
		go func() {
			defer restartWG.Done()
			time.Sleep(500 * time.Millisecond)
			pgMu.Lock()
			if err := b.pg.Restart(); err != nil && restartErr == nil {
				restartErr = err
			}
			pgMu.Unlock()
			last.Store(time.Now().UnixNano())
			done.Add(1)
			busy.Store(false)
		}()
		return false
	})
	last.Store(time.Now().UnixNano())

	reports := make([]usersReport, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		cmd := childCommand(t, srv, b, "^TestFleetRestartChild$")
		cmd.Env = append(cmd.Env, envFleet+"=users", envUsers+"="+strconv.Itoa(users), envSeconds+"="+strconv.Itoa(secs))
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(out)
			var lines []string
			for sc.Scan() {
				lines = append(lines, sc.Text())
				if rest, ok := strings.CutPrefix(sc.Text(), "USERS "); ok {
					json.Unmarshal([]byte(rest), &reports[i])
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("replica %d: %v\n%s", i, err, strings.Join(lines, "\n"))
			}
		}()
	}
	wg.Wait()
	srv.SetInterceptor(nil)
	restartWG.Wait()
	if restartErr != nil {
		t.Fatal(restartErr)
	}
	if err := b.pg.Restart(); err != nil {
		t.Fatal(err)
	}

	loggedOut := map[int]bool{}
	calls := 0
	for i, r := range reports {
		t.Logf("replica %d: %d calls, %d temporary failures, users logged out %v", i, r.Calls, r.Temporary, r.LoggedOut)
		calls += r.Calls
		if r.Calls == 0 {
			t.Errorf("replica %d made no call", i)
		}
		for _, u := range r.LoggedOut {
			loggedOut[u] = true
		}
		if r.FirstLogout != "" {
			t.Errorf("replica %d: %s", i, r.FirstLogout)
		}
	}
	uses := counter.snapshot()
	twice := presentedTwice(uses)
	t.Logf("%d s, %d database restarts, %d calls, %d refresh tokens presented, %d presented more than once, %d of %d users logged out",
		secs, done.Load(), calls, len(uses), twice, len(loggedOut), users)
	if int(done.Load()) < min(restarts, 2) {
		t.Errorf("only %d database restarts happened", done.Load())
	}
	if twice != 0 || len(loggedOut) != 0 {
		t.Errorf("%d refresh tokens presented twice, %d users logged out; want 0 and 0", twice, len(loggedOut))
	}
	if len(uses) < users {
		t.Errorf("only %d refreshes for %d users", len(uses), users)
	}
	// Every user's grant is intact: a new engine refreshes each one.
	for i := range users {
		src, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: st, Key: userKey(i)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := src.Token(); err != nil {
			t.Errorf("user %d after the run: %v", i, err)
		}
	}
}

// TestLeaseLapseChild is replica B of TestFleetLeaseLapseNeverResends: it
// resumes the user from the vault (lease 2 s) and asks for a token once.
func TestLeaseLapseChild(t *testing.T) {
	if os.Getenv(envFleet) != "lapse" {
		t.Skip("run by TestFleetLeaseLapseNeverResends")
	}
	c, st := childClientAndStore(t, 2*time.Second)
	src, err := c.TokenSource(context.Background(), oauthclient.TokenSourceConfig{Store: st, Key: "lapse"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Token()
	msg := "ok"
	if err != nil {
		msg = err.Error()
	}
	fmt.Printf("LAPSE %v %s\n", errors.Is(err, engine.ErrRotationLost), msg)
}

// TestFleetLeaseLapseNeverResends (S29): replica A (this process, lease
// 2 s) is inside a refresh when it is cut off from PostgreSQL (a driver
// wrapper drops every statement); replica B (another process) waits for
// the lease. A's lease lapses and B takes it, but the spent refresh token
// is never presented again, counted at the OP, which revokes the whole
// grant on reuse:
//   - "answered": the OP answers A (rotating) after the cut. A keeps
//     retrying the write until its lease is surely lost, then holds the
//     rotation in memory; B finds the refresh marked in the record and
//     reports ErrRotationLost without a request. When A's database comes
//     back, A writes the rotation and refreshes with it: the user is kept.
//   - "outlived": the OP holds A's request beyond A's lease. A abandons the
//     call before the lease could lapse (within the 2 s), B again reports
//     ErrRotationLost and sends nothing.
func TestFleetLeaseLapseNeverResends(t *testing.T) {
	for _, held := range []bool{false, true} {
		name := map[bool]string{false: "answered", true: "outlived"}[held]
		t.Run(name, func(t *testing.T) { leaseLapse(t, held) })
	}
}

func leaseLapse(t *testing.T, holdPastLease bool) {
	b := newPostgres(t)
	srv, c, toks := aliceAtReuseOP(t)
	ctx := context.Background()
	db, fault := openFaulty(t, b)
	st := b.store(t, sqlstore.Config{DB: db, LeaseTTL: 2 * time.Second})
	src, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: st, Key: "lapse"}, toks)
	if err != nil {
		t.Fatal(err)
	}
	counter := countRefreshTokens(srv)
	tokenPath := strings.TrimPrefix(srv.TokenURL, srv.Issuer)
	arrived, release := make(chan struct{}), make(chan struct{})
	abandoned := make(chan time.Duration, 1)
	var first atomic.Bool
	srv.SetInterceptor(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != tokenPath || !first.CompareAndSwap(false, true) {
			return false
		}
		start := time.Now()
		close(arrived)
		if holdPastLease {
			select {
			case <-r.Context().Done():
				abandoned <- time.Since(start)
			case <-time.After(30 * time.Second):
			}
		}
		<-release
		return false // the OP answers, rotating (nobody may be listening)
	})
	resA := make(chan error, 1)
	src.Invalidate(toks.OAuth2Token())
	go func() { _, err := src.Token(); resA <- err }()
	<-arrived
	fault.down.Store(true) // A is cut off with its request at the OP

	cmd := childCommand(t, srv, b, "^TestLeaseLapseChild$")
	cmd.Env = append(cmd.Env, envFleet+"=lapse")
	cmd.Stderr = os.Stderr
	outB := make(chan string, 1)
	go func() {
		out, _ := cmd.Output()
		for _, l := range strings.Split(string(out), "\n") {
			if rest, ok := strings.CutPrefix(l, "LAPSE "); ok {
				outB <- rest
				return
			}
		}
		outB <- "no result: " + string(out)
	}()
	if !holdPastLease {
		close(release)
	} else {
		select {
		case d := <-abandoned:
			if d >= 2*time.Second {
				t.Errorf("A abandoned its token request %v after sending it, after its 2 s lease could lapse", d)
			}
		case <-time.After(10 * time.Second):
			t.Error("A never abandoned its token request")
		}
	}
	errA := <-resA
	var te *tokenstore.TemporaryError
	if !errors.As(errA, &te) {
		t.Fatalf("A, cut off = %v, want a *TemporaryError", errA)
	}
	resultB := <-outB
	if holdPastLease {
		close(release)
	}
	if !strings.HasPrefix(resultB, "true ") {
		t.Fatalf("B after A's lease lapsed: %s; want ErrRotationLost", resultB)
	}
	uses := counter.snapshot()
	if len(uses) != 1 || uses[toks.OAuth2Token().RefreshToken] != 1 {
		t.Fatalf("refresh tokens at the OP: %d distinct, login's sent %d times; want the login's once", len(uses), uses[toks.OAuth2Token().RefreshToken])
	}

	// A's database comes back.
	fault.down.Store(false)
	time.Sleep(time.Until(te.RetryAfter))
	_, err = src.Token()
	if holdPastLease {
		// A never got an answer: it cannot know whether the OP rotated,
		// and reports the interrupted refresh like B.
		if !errors.Is(err, engine.ErrRotationLost) {
			t.Fatalf("A after the cut, no answer received = %v, want ErrRotationLost", err)
		}
	} else if err != nil {
		t.Fatalf("A after the cut, holding the rotation = %v, want a token", err)
	}
	for tok, n := range counter.snapshot() {
		if n != 1 {
			t.Fatalf("a refresh token was presented %d times (login's: %v)", n, tok == toks.OAuth2Token().RefreshToken)
		}
	}
}

// rig is one user's vault on PostgreSQL behind a faultyDB (lease 1 s),
// against the real OP with family revocation on reuse.
type rig struct {
	srv     *oauthtest.Server
	c       *oauthclient.Client
	st      *sqlstore.Store
	fault   *faultyDB
	counter *refreshCounter
}

func newRig(t *testing.T) *rig {
	b := newPostgres(t)
	srv, err := oauthtest.Start(oauthtest.Options{RevokeFamilyOnReuse: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	c, err := webClient(context.Background(), srv.Issuer, srv.RootCAs())
	if err != nil {
		t.Fatal(err)
	}
	db, fault := openFaulty(t, b)
	r := &rig{srv: srv, c: c, st: b.store(t, sqlstore.Config{DB: db, LeaseTTL: time.Second}), fault: fault}
	r.counter = countRefreshTokens(srv)
	return r
}

// login saves a fresh login's record under key and returns its tokens.
func (r *rig) login(t *testing.T, key string) *oauthclient.Tokens {
	toks := loginAlice(t, r.srv)
	if _, err := r.c.TokenSource(context.Background(), oauthclient.TokenSourceConfig{Store: r.st, Key: key}, toks); err != nil {
		t.Fatal(err)
	}
	return toks
}

// cutOnNextRefresh cuts the database off once the next refresh request has
// reached the OP, which then answers (rotating): the rotation's write fails.
func (r *rig) cutOnNextRefresh() {
	tokenPath := strings.TrimPrefix(r.srv.TokenURL, r.srv.Issuer)
	var once atomic.Bool
	r.srv.SetInterceptor(func(w http.ResponseWriter, req *http.Request) bool {
		if req.URL.Path == tokenPath && once.CompareAndSwap(false, true) {
			r.fault.down.Store(true)
		}
		return false
	})
}

// failedRotation makes get's refresh fail to store its rotation and
// checks the failure is temporary.
func (r *rig) failedRotation(t *testing.T, get func() error) {
	t.Helper()
	r.cutOnNextRefresh()
	var te *tokenstore.TemporaryError
	if err := get(); !errors.As(err, &te) {
		t.Fatalf("refresh with the store cut off after the request = %v, want a *TemporaryError", err)
	}
}

// check: every refresh token presented once, and the login's among them.
func (r *rig) check(t *testing.T, logins ...*oauthclient.Tokens) {
	t.Helper()
	uses := r.counter.snapshot()
	presentedOnce(t, uses)
	for _, l := range logins {
		if uses[l.OAuth2Token().RefreshToken] != 1 {
			t.Fatalf("a login's refresh token was presented %d times, want once", uses[l.OAuth2Token().RefreshToken])
		}
	}
}

func (r *rig) stored(t *testing.T, key string) string {
	t.Helper()
	rec, err := engine.LoadRecord(context.Background(), r.st, key)
	if err != nil {
		t.Fatal(err)
	}
	return rec.RefreshToken
}

// TestUnsavedRotationSurvivesEviction (S29): a rotation whose write failed
// (the database cut off right after the OP answered) outlives the engine
// that received it, in each way an engine goes away or is joined by another:
//   - evicted from a UserPool while the database is still down: the next
//     engine for the user (after the database is back) writes the rotation
//     and refreshes with it;
//   - evicted after the database is back: the evicted engine's Close
//     flushes the rotation to the vault, with no token request;
//   - a second engine on the same key: it writes the first one's rotation
//     and never sends the spent token;
//   - UserPool.Drain: flushes it, then the pool refuses calls (ErrClosed).
//
// In every case no refresh token reaches the OP twice (its reuse detection
// would revoke the grant) and the user keeps working.
func TestUnsavedRotationSurvivesEviction(t *testing.T) {
	ctx := context.Background()
	t.Run("evicted while down", func(t *testing.T) {
		r := newRig(t)
		l0, l1 := r.login(t, "u0"), r.login(t, "u1")
		pool, err := r.c.UserPool(oauthclient.TokenSourceConfig{Store: r.st, MaxUsers: 1})
		if err != nil {
			t.Fatal(err)
		}
		r.failedRotation(t, func() error { _, err := poolToken(ctx, pool, "u0"); return err })
		if _, err := pool.Source(ctx, "u1"); err != nil { // evicts u0, database still down
			t.Fatal(err)
		}
		r.fault.down.Store(false)
		if _, err := poolToken(ctx, pool, "u0"); err != nil {
			t.Fatalf("u0 after eviction and recovery: %v", err)
		}
		r.check(t, l0)
		if r.stored(t, "u0") == l0.OAuth2Token().RefreshToken || pool.Len() != 1 {
			t.Fatal("the vault still holds the spent token")
		}
		_ = l1
	})
	t.Run("evicted after recovery", func(t *testing.T) {
		r := newRig(t)
		l0 := r.login(t, "u0")
		r.login(t, "u1")
		pool, err := r.c.UserPool(oauthclient.TokenSourceConfig{Store: r.st, MaxUsers: 1})
		if err != nil {
			t.Fatal(err)
		}
		r.failedRotation(t, func() error { _, err := poolToken(ctx, pool, "u0"); return err })
		r.fault.down.Store(false)
		before := len(r.counter.snapshot())
		if _, err := pool.Source(ctx, "u1"); err != nil { // evicts u0: its Close flushes
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for r.stored(t, "u0") == l0.OAuth2Token().RefreshToken {
			if time.Now().After(deadline) {
				t.Fatal("the evicted engine never flushed its rotation")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if after := len(r.counter.snapshot()); after != before {
			t.Fatalf("the flush made %d token requests", after-before)
		}
		if _, err := poolToken(ctx, pool, "u0"); err != nil {
			t.Fatal(err)
		}
		r.check(t, l0)
	})
	t.Run("second engine", func(t *testing.T) {
		r := newRig(t)
		l0 := r.login(t, "u0")
		first, err := r.c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: r.st, Key: "u0"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.failedRotation(t, func() error { _, err := first.Token(); return err })
		r.fault.down.Store(false)
		second, err := r.c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: r.st, Key: "u0"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := second.Token(); err != nil {
			t.Fatalf("second engine: %v", err)
		}
		r.check(t, l0)
		if uses := r.counter.snapshot(); len(uses) != 2 {
			t.Fatalf("%d refresh tokens presented, want the login's and the rotated one", len(uses))
		}
	})
	t.Run("drain", func(t *testing.T) {
		r := newRig(t)
		l0 := r.login(t, "u0")
		pool, err := r.c.UserPool(oauthclient.TokenSourceConfig{Store: r.st})
		if err != nil {
			t.Fatal(err)
		}
		r.failedRotation(t, func() error { _, err := poolToken(ctx, pool, "u0"); return err })
		r.fault.down.Store(false)
		before := len(r.counter.snapshot())
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := pool.Drain(dctx); err != nil {
			t.Fatalf("Drain: %v", err)
		}
		if r.stored(t, "u0") == l0.OAuth2Token().RefreshToken {
			t.Fatal("Drain did not flush the rotation")
		}
		if after := len(r.counter.snapshot()); after != before {
			t.Fatalf("Drain made %d token requests", after-before)
		}
		if _, err := poolToken(ctx, pool, "u0"); !errors.Is(err, engine.ErrClosed) {
			t.Fatalf("Token after Drain = %v, want ErrClosed", err)
		}
		// The next process resumes from the flushed record.
		src, err := r.c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: r.st, Key: "u0"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := src.Token(); err != nil {
			t.Fatal(err)
		}
		r.check(t, l0)
	})
}

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
	"syscall"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/tokenstore/sqlstore"
)

// The kill-before-send hook of the replica programs: a replica started
// with envKillAt=N SIGKILLs itself when its Nth refresh request is about
// to leave (the engine has written the pending marker, the request has not
// been sent), provided no other refresh of the process is inside its store
// transaction (whose request could be at the provider: that is the other
// window, which no client can close).
const (
	envKillAt = "OAUTHSAFE_VAULT_KILL_AT"
	envKills  = "OAUTHSAFE_VAULT_KILLS"
)

// killHook is the replica side of envKillAt.
type killHook struct {
	at        int64
	tokenPath string
	requests  atomic.Int64
	inside    atomic.Int64 // refreshes inside a store transaction
}

// wrap is the replica's strictnet.Config.Wrap: it sees each request
// before it leaves (observers see no body; the replica's only token
// endpoint calls are refreshes).
func (k *killHook) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if k.at > 0 && req.URL.Path == k.tokenPath && k.requests.Add(1) >= k.at && k.inside.Load() == 1 {
			os.Stdout.WriteString("KILLED before sending\n")
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
		return next.RoundTrip(req)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// countingStore counts the transactions inside fn, for killHook.
type countingStore struct {
	tokenstore.Store
	k *killHook
}

func (s countingStore) Update(ctx context.Context, key string, fn func(context.Context, tokenstore.Tx) error) error {
	return s.Store.Update(ctx, key, func(ctx context.Context, tx tokenstore.Tx) error {
		s.k.inside.Add(1)
		defer s.k.inside.Add(-1)
		return fn(ctx, tx)
	})
}

// killableReplica is a replica's client and vault (lease leaseTTL) with
// the kill-before-send hook armed from the environment.
func killableReplica(t *testing.T, leaseTTL time.Duration) (*oauthclient.Client, tokenstore.Store) {
	t.Helper()
	ctx := context.Background()
	k := &killHook{}
	k.at, _ = strconv.ParseInt(os.Getenv(envKillAt), 10, 64)
	c, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer: os.Getenv(envIssuer), ClientID: oauthtest.ClientNative, RedirectURL: "http://127.0.0.1:41000/callback",
		Scopes: []string{"openid", "offline_access", oauthtest.ScopeAPIRead},
		HTTP:   strictnet.Config{RootCAs: childRoots(t), Wrap: k.wrap},
	})
	if err != nil {
		t.Fatal(err)
	}
	k.tokenPath = strings.TrimPrefix(c.Metadata().TokenEndpoint, os.Getenv(envIssuer))
	return c, countingStore{childVault(ctx, t, leaseTTL), k}
}

// TestMarkerHolderChild resumes user "marked" from the vault (lease 2 s)
// and asks for a token; with envKillAt=1 it dies after its marker write,
// before its request.
func TestMarkerHolderChild(t *testing.T) {
	if os.Getenv(envFleet) != "marker" {
		t.Skip("run by TestMarkerResolvedByIntrospection")
	}
	c, st := killableReplica(t, 2*time.Second)
	src, err := c.TokenSource(context.Background(), oauthclient.TokenSourceConfig{Store: st, Key: "marked"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	src.Token()
	t.Fatal("the refresh went through; the kill hook should have ended this process")
}

// TestMarkerResolvedByIntrospection (S29): a replica dies inside a
// refresh, after it marked the record and before (or after) its token
// request; a surviving replica with ResolveMarkersByIntrospection asks
// the real OP (rotation, reuse detection that revokes the grant, RFC 7662
// introspection of refresh tokens) about the stored token once the dead
// holder's lease has lapsed:
//   - never sent: the token is active; the survivor clears the marker and
//     refreshes, and the user keeps working;
//   - sent and rotated (the OP answered a request whose sender was dead):
//     the token is inactive; ErrRotationLost, and the spent token is not
//     presented again (the grant is not revoked);
//   - introspection refused (401 invalid_client): as without the option,
//     ErrRotationLost without a request.
func TestMarkerResolvedByIntrospection(t *testing.T) {
	for _, tc := range []struct {
		name          string
		sent, refused bool
		wantLost      bool
	}{
		{name: "never sent"},
		{name: "sent and rotated", sent: true, wantLost: true},
		{name: "introspection refused", refused: true, wantLost: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newPostgres(t)
			srv, c, toks := aliceAtReuseOP(t)
			ctx := context.Background()
			st := b.store(t, sqlstore.Config{})
			if _, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: st, Key: "marked"}, toks); err != nil {
				t.Fatal(err)
			}
			counter := countRefreshTokens(srv)
			tokenPath := strings.TrimPrefix(srv.TokenURL, srv.Issuer)
			introspectPath := strings.TrimPrefix(srv.IntrospectionURL, srv.Issuer)
			cmd := childCommand(t, srv, b, "^TestMarkerHolderChild$")
			cmd.Env = append(cmd.Env, envFleet+"=marker")
			if !tc.sent {
				cmd.Env = append(cmd.Env, envKillAt+"=1")
			}
			var introspections atomic.Int32
			var first atomic.Bool
			started := make(chan struct{})
			srv.SetInterceptor(func(w http.ResponseWriter, r *http.Request) bool {
				switch r.URL.Path {
				case introspectPath:
					introspections.Add(1)
					if tc.refused {
						w.Header().Set("Content-Type", "application/json")
						w.WriteHeader(http.StatusUnauthorized)
						w.Write([]byte(`{"error":"invalid_client"}`))
						return true
					}
				case tokenPath:
					if tc.sent && first.CompareAndSwap(false, true) {
						<-started
						cmd.Process.Kill() // the sender is dead; the OP answers, rotating
					}
				}
				return false
			})
			out, _ := cmd.StdoutPipe()
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			close(started)
			died := make(chan string, 1)
			go func() {
				sc := bufio.NewScanner(out)
				var lines []string
				for sc.Scan() {
					lines = append(lines, sc.Text())
				}
				died <- strings.Join(lines, "\n")
			}()
			select {
			case lines := <-died:
				if !tc.sent && !strings.Contains(lines, "KILLED before sending") {
					t.Fatalf("the holder did not die before sending:\n%s", lines)
				}
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				t.Fatal("the holder never died")
			}
			cmd.Wait()
			if n := len(counter.snapshot()); n != map[bool]int{false: 0, true: 1}[tc.sent] {
				t.Fatalf("%d refresh tokens reached the OP from the holder", n)
			}

			src, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: st, Key: "marked", ResolveMarkersByIntrospection: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = tokenUntilSettled(t, src)
			if tc.wantLost {
				if !errors.Is(err, engine.ErrRotationLost) {
					t.Fatalf("survivor = %v, want ErrRotationLost", err)
				}
			} else if err != nil {
				t.Fatalf("survivor = %v, want a token: the request never reached the OP", err)
			}
			if introspections.Load() == 0 {
				t.Fatal("the survivor never asked the OP")
			}
			uses := counter.snapshot()
			presentedOnce(t, uses)
			want := map[bool]int{false: 1, true: 1}[tc.sent]
			if tc.refused {
				want = 0
			}
			if uses[toks.OAuth2Token().RefreshToken] != want || len(uses) != want {
				t.Fatalf("the OP saw %d refresh tokens (the login's %d times), want the login's %d times", len(uses), uses[toks.OAuth2Token().RefreshToken], want)
			}
			if !tc.wantLost {
				// The marker is gone: a plain engine (no introspection)
				// refreshes with the rotated token.
				plain, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: st, Key: "marked"}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := plain.Token(); err != nil {
					t.Fatalf("after the resolution: %v", err)
				}
			}
		})
	}
}

// tokenUntilSettled asks src for a token, waiting out the temporary
// failures of a marker too recent to resolve (the dead holder's lease must
// lapse, then its request must surely have ended), for at most 30 s.
func tokenUntilSettled(t *testing.T, src *oauthclient.TokenSource) error {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := src.Token()
		var te *tokenstore.TemporaryError
		if !errors.As(err, &te) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(time.Until(te.RetryAfter) + 10*time.Millisecond)
	}
}

// ackLost is a vault whose Tx.Put, while armed, writes (the write
// commits: the real SQLite driver has it on disk) and then returns an
// error, as a write whose acknowledgement was lost.
type ackLost struct {
	tokenstore.Store
	armed, landed atomic.Bool
	puts          atomic.Int32
}

var errAckLost = errors.New("test vault: connection reset while reading the reply")

func (s *ackLost) Update(ctx context.Context, key string, fn func(context.Context, tokenstore.Tx) error) error {
	return s.Store.Update(ctx, key, func(ctx context.Context, tx tokenstore.Tx) error { return fn(ctx, ackLostTx{tx, s}) })
}

type ackLostTx struct {
	tokenstore.Tx
	s *ackLost
}

func (tx ackLostTx) Put(ctx context.Context, v []byte) error {
	if !tx.s.armed.CompareAndSwap(true, false) { // the first Put of the refresh: the marker
		return tx.Tx.Put(ctx, v)
	}
	tx.s.puts.Add(1)
	if tx.s.landed.Load() {
		if err := tx.Tx.Put(ctx, v); err != nil {
			return err
		}
	}
	return fmt.Errorf("%w: %w", tokenstore.ErrUnavailable, errAckLost)
}

// TestMarkerAckLost (S29): the write of the pending marker reaches the
// database (the real SQLite driver, modernc.org/sqlite) but its
// acknowledgement is lost. It is read back under the lease: the marker
// is there, so the request goes out and its outcome clears the marker;
// the user keeps working, on this engine and on any other.
//   - committed: a vault wrapper whose Put writes and then fails; the
//     engine reads the record back;
//   - in the driver: the database connection loses the answer to the
//     vault's UPDATE (a driver wrapper); sqlstore reads the row back;
//   - not written: the wrapper fails without writing; the request is not
//     sent, the failure is temporary, and the next refresh goes through.
func TestMarkerAckLost(t *testing.T) {
	for _, mode := range []string{"committed", "in the driver", "not written"} {
		landed := mode != "not written"
		t.Run(mode, func(t *testing.T) {
			b := newSQLite(t)
			srv, c, toks := aliceAtReuseOP(t)
			ctx := context.Background()
			db, fault := openFaulty(t, b)
			st := &ackLost{Store: b.store(t, sqlstore.Config{DB: db})}
			src, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: st, Key: "ack"}, toks)
			if err != nil {
				t.Fatal(err)
			}
			counter := countRefreshTokens(srv)
			if mode == "in the driver" {
				fault.loseAck.Store(1)
			} else {
				st.landed.Store(landed)
				st.armed.Store(true)
			}
			src.Invalidate(toks.OAuth2Token())
			_, err = src.Token()
			if mode == "in the driver" && fault.loseAck.Load() > 0 || mode != "in the driver" && st.puts.Load() != 1 {
				t.Fatal("the marker write was not the one that lost its acknowledgement")
			}
			if landed {
				if err != nil {
					t.Fatalf("refresh whose marker write lost its acknowledgement = %v, want a token", err)
				}
			} else {
				var te *tokenstore.TemporaryError
				if !errors.As(err, &te) || len(counter.snapshot()) != 0 {
					t.Fatalf("refresh whose marker write failed = %v (%d requests), want a *TemporaryError and no request", err, len(counter.snapshot()))
				}
				time.Sleep(time.Until(te.RetryAfter))
				if _, err := src.Token(); err != nil {
					t.Fatalf("the next refresh = %v", err)
				}
			}
			// Another engine (as another replica would) finds no marker.
			other, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: b.store(t, sqlstore.Config{}), Key: "ack"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := other.Token(); err != nil {
				t.Fatalf("another engine after the lost acknowledgement = %v", err)
			}
			uses := counter.snapshot()
			presentedOnce(t, uses)
			if len(uses) != 2 || uses[toks.OAuth2Token().RefreshToken] != 1 {
				t.Fatalf("%d refresh tokens presented, want the login's and the rotated one", len(uses))
			}
		})
	}
}

// fleetKillLease is the kill fleet's lease: long enough for a token
// request on a loaded machine under the race detector (the request must
// end within two thirds of it, or its outcome is unknown), short enough
// for several kills in a run.
const fleetKillLease = 4 * time.Second

// killReport is what a replica of the kill-before-send fleet saw: users
// that got an error needing a login are printed at once (LOGOUT n), so
// that a replica killed later still reports them.
type killReport struct{ Calls, Temporary int }

// TestFleetKillChild is one replica of TestFleetKillBeforeSendLosesNoUser:
// its own Client.UserPool with ResolveMarkersByIntrospection on the vault
// (lease fleetKillLease), one goroutine per user asking for a token every
// 50 ms.
func TestFleetKillChild(t *testing.T) {
	if os.Getenv(envFleet) != "kill" {
		t.Skip("run by TestFleetKillBeforeSendLosesNoUser")
	}
	ctx := context.Background()
	c, st := killableReplica(t, fleetKillLease)
	users, err := c.UserPool(oauthclient.TokenSourceConfig{Store: st, ResolveMarkersByIntrospection: true})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(os.Getenv(envUsers))
	secs, _ := strconv.ParseFloat(os.Getenv(envSeconds), 64)
	end := time.Now().Add(time.Duration(secs * float64(time.Second)))
	var rep killReport
	out := map[int]bool{}
	rep.Calls, rep.Temporary = askEvery50ms(ctx, t, users, n, end, func(i int, err error) {
		if !out[i] {
			out[i] = true
			fmt.Printf("LOGOUT %d %s\n", i, strings.ReplaceAll(err.Error(), "\n", " "))
		}
	})
	b, _ := json.Marshal(rep)
	fmt.Printf("KILLFLEET %s\n", b)
}

// TestFleetKillBeforeSendLosesNoUser (S23, S29): 3 replica processes serve
// 10 users from one PostgreSQL vault (lease 4 s), against the real OP with
// rotation, reuse detection that revokes the whole grant, and RFC 7662
// introspection of refresh tokens, with access tokens of 2 s. Again and
// again a replica SIGKILLs itself after the engine wrote the pending
// marker and before the token request left (the replica's kill hook), and
// is started again. Each kill leaves a marker; the next holder, once the
// dead lease has lapsed, asks the OP, finds the token active and refreshes.
// No user is logged out and no refresh token is presented twice, counted
// at the OP; after the run every user still refreshes. About 25 s by
// default; OAUTHSAFE_VAULT_SECONDS and OAUTHSAFE_VAULT_KILLS lengthen it.
func TestFleetKillBeforeSendLosesNoUser(t *testing.T) {
	if testing.Short() {
		t.Skip("fleet test in -short mode")
	}
	const users, replicas = 10, 3
	kills := 6
	if n, err := strconv.Atoi(os.Getenv(envKills)); err == nil && n > 0 {
		kills = n
	}
	secs := 20
	if n, err := strconv.Atoi(os.Getenv(envSeconds)); err == nil && n > 0 {
		secs = n
	}
	b := newPostgres(t)
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

	end := time.Now().Add(time.Duration(secs) * time.Second)
	var mu sync.Mutex
	killed := 0
	loggedOut := map[int]string{}
	var reports []killReport
	var wg sync.WaitGroup
	// Each slot runs replicas one after the other until the end: while
	// kills remain, a replica is armed to kill itself at its 2nd to 4th
	// refresh request.
	for slot := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; time.Until(end) > time.Second; n++ {
				mu.Lock()
				at := 0
				if killed < kills {
					at = 2 + (slot+n)%3
				}
				mu.Unlock()
				cmd := childCommand(t, srv, b, "^TestFleetKillChild$")
				cmd.Env = append(cmd.Env, envFleet+"=kill", envUsers+"="+strconv.Itoa(users),
					envSeconds+"="+strconv.FormatFloat(time.Until(end).Seconds(), 'f', 3, 64), envKillAt+"="+strconv.Itoa(at))
				out, _ := cmd.StdoutPipe()
				cmd.Stderr = os.Stderr
				if err := cmd.Start(); err != nil {
					t.Error(err)
					return
				}
				sc := bufio.NewScanner(out)
				var lines []string
				died := false
				for sc.Scan() {
					line := sc.Text()
					lines = append(lines, line)
					mu.Lock()
					switch {
					case strings.HasPrefix(line, "KILLED "):
						died = true
						killed++
					case strings.HasPrefix(line, "LOGOUT "):
						f := strings.SplitN(line, " ", 3)
						u, _ := strconv.Atoi(f[1])
						loggedOut[u] = f[2]
					case strings.HasPrefix(line, "KILLFLEET "):
						var r killReport
						json.Unmarshal([]byte(strings.TrimPrefix(line, "KILLFLEET ")), &r)
						reports = append(reports, r)
					}
					mu.Unlock()
				}
				if err := cmd.Wait(); err != nil && !died {
					t.Errorf("replica %d/%d: %v\n%s", slot, n, err, strings.Join(lines, "\n"))
					return
				}
			}
		}()
	}
	wg.Wait()

	uses := counter.snapshot()
	twice := presentedTwice(uses)
	calls, temporary := 0, 0
	for _, r := range reports {
		calls += r.Calls
		temporary += r.Temporary
	}
	t.Logf("%d s, %d replicas killed before sending, %d refresh tokens presented, %d more than once, %d of %d users logged out; survivors' calls %d (%d temporary failures)",
		secs, killed, len(uses), twice, len(loggedOut), users, calls, temporary)
	for u, msg := range loggedOut {
		t.Errorf("user %d logged out: %s", u, msg)
	}
	if twice != 0 {
		t.Errorf("%d refresh tokens presented twice", twice)
	}
	if killed < min(kills, 3) {
		t.Errorf("only %d replicas were killed before sending", killed)
	}
	if len(uses) < users {
		t.Errorf("only %d refreshes for %d users", len(uses), users)
	}
	// Every user's grant is intact: a new engine refreshes each one.
	for i := range users {
		src, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: st, Key: userKey(i), ResolveMarkersByIntrospection: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := tokenUntilSettled(t, src); err != nil {
			t.Errorf("user %d after the run: %v", i, err)
		}
	}
}

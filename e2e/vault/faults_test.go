package vault_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net/http"
	"os"
	"os/exec"
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

const envHold = "OAUTHSAFE_VAULT_HOLD"

// TestVaultHoldChild takes the lease on "held", writes "written by the
// killed replica", says HELD and waits to be killed.
func TestVaultHoldChild(t *testing.T) {
	if os.Getenv(envHold) != "1" {
		t.Skip("run by TestVaultReplicaKilledHoldingLock")
	}
	db, err := sql.Open(os.Getenv(envDriver), os.Getenv(envDSN))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := sqlstore.New(ctx, sqlstore.Config{DB: db, Keys: keyList(key1), LeaseTTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st.Update(ctx, "held", func(ctx context.Context, tx tokenstore.Tx) error {
		if err := tx.Put(ctx, []byte("written by the killed replica")); err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString("HELD\n")
		time.Sleep(time.Hour)
		return nil
	})
}

// TestVaultReplicaKilledHoldingLock: a replica SIGKILLed inside Update
// blocks the key only until its lease lapses; then another replica
// proceeds.
//
// On the store: the killed replica wrote before it died; the next holder
// reads what it wrote (Put was durable).
//
// Through the engine: the killed replica's engine was inside its refresh,
// its token request in flight (held at the OP's door, then refused, so the
// refresh token was not spent, which no client can know); another
// replica's engine, resumed from the same vault within the bound, finds the
// interrupted refresh marked in the record and reports ErrRotationLost
// without sending the token (S29); with ReuseGrace it sends the stored
// token, which the OP receives exactly once.
func TestVaultReplicaKilledHoldingLock(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name+"/store", func(t *testing.T) {
			st := b.store(t, sqlstore.Config{})
			cmd := exec.Command(os.Args[0], "-test.run=^TestVaultHoldChild$")
			cmd.Env = append(os.Environ(), envHold+"=1", envDriver+"="+b.driver, envDSN+"="+b.dsn)
			out, _ := cmd.StdoutPipe()
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(out)
			for sc.Scan() && sc.Text() != "HELD" {
			}
			// While the child lives and renews, the key is held.
			short := b.store(t, sqlstore.Config{LockTimeout: 3 * time.Second})
			err := short.Update(context.Background(), "held", func(context.Context, tokenstore.Tx) error { return nil })
			if !errors.Is(err, tokenstore.ErrLocked) {
				t.Fatalf("Update while a live replica holds the lease = %v", err)
			}
			cmd.Process.Kill()
			cmd.Wait()
			killed := time.Now()
			var got []byte
			err = st.Update(context.Background(), "held", func(ctx context.Context, tx tokenstore.Tx) error {
				got, err = tx.Get(ctx)
				return err
			})
			if err != nil || string(got) != "written by the killed replica" {
				t.Fatalf("after the kill: %q, %v", got, err)
			}
			// Bound: the child's LeaseTTL (2 s) plus polling.
			if d := time.Since(killed); d > 10*time.Second {
				t.Fatalf("took %v after the kill", d)
			}
		})
		t.Run(b.name+"/engine", func(t *testing.T) { engineKilled(t, b) })
	}
}

// TestVaultEngineHoldChild resumes the user's engine from the vault (lease
// of 2 s) and asks for a token; the parent holds its token request and
// kills it.
func TestVaultEngineHoldChild(t *testing.T) {
	if os.Getenv(envHold) != "engine" {
		t.Skip("run by TestVaultReplicaKilledHoldingLock")
	}
	ctx := context.Background()
	c, st := childClientAndStore(t, 2*time.Second)
	src, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: st, Key: "killed"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	src.Token()
	t.Fatal("the token request was answered; the parent should have killed this process")
}

func engineKilled(t *testing.T, b *backend) {
	srv, c, toks := aliceAtReuseOP(t)
	ctx := context.Background()
	st := b.store(t, sqlstore.Config{})
	if _, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: st, Key: "killed"}, toks); err != nil {
		t.Fatal(err)
	}
	// The OP's door: the first refresh request (the child's) is held until
	// the child is dead, then refused with a 503 that nobody reads; the
	// others go through and are counted.
	tokenPath := strings.TrimPrefix(srv.TokenURL, srv.Issuer)
	arrived, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	var mu sync.Mutex
	uses := map[string]int{}
	srv.SetInterceptor(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != tokenPath || r.ParseForm() != nil || r.PostForm.Get("grant_type") != "refresh_token" {
			return false
		}
		if first.CompareAndSwap(false, true) {
			close(arrived)
			<-release
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		mu.Lock()
		uses[r.PostForm.Get("refresh_token")]++
		mu.Unlock()
		return false
	})
	cmd := childCommand(t, srv, b, "^TestVaultEngineHoldChild$")
	cmd.Env = append(cmd.Env, envHold+"=engine")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	select {
	case <-arrived:
	case <-time.After(60 * time.Second):
		close(release)
		t.Fatal("the child's refresh never reached the OP")
	}
	// The child's engine holds the lease while its request is in flight.
	short := b.store(t, sqlstore.Config{LockTimeout: time.Second})
	if err := short.Update(ctx, "killed", func(context.Context, tokenstore.Tx) error { return nil }); !errors.Is(err, tokenstore.ErrLocked) {
		t.Fatalf("Update during the child's refresh = %v", err)
	}
	cmd.Process.Kill() // SIGKILL
	cmd.Wait()
	killed := time.Now()
	close(release)

	// The killed replica died with its request at the server and no
	// outcome written: the record says so (S29). The survivor does not
	// send the stored token into the provider's reuse detection; it
	// reports ErrRotationLost, matching ErrLoginRequired, and leaves the
	// record.
	src, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: st, Key: "killed"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Token(); !errors.Is(err, engine.ErrRotationLost) || !errors.Is(err, tokenstore.ErrLoginRequired) {
		t.Fatalf("the surviving replica's refresh = %v, want ErrRotationLost", err)
	}
	if d := time.Since(killed); d > 10*time.Second {
		t.Fatalf("took %v after the kill (lease 2 s)", d)
	}
	mu.Lock()
	n := len(uses)
	mu.Unlock()
	if n != 0 {
		t.Fatalf("the OP received %d refresh tokens after the kill, want none", n)
	}
	if _, err := engine.LoadRecord(ctx, st, "killed"); err != nil {
		t.Fatalf("the record was not left in place: %v", err)
	}
	// With a provider that has a reuse grace period, the survivor sends the
	// stored token again (here the OP never spent it: it answered 503).
	src, err = c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: st, Key: "killed", ReuseGrace: time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Token(); err != nil {
		t.Fatalf("the surviving replica's refresh within the grace period: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(uses) != 1 || uses[toks.OAuth2Token().RefreshToken] != 1 {
		t.Fatalf("the OP received %v refresh tokens, want the stored one once", len(uses))
	}
}

// TestVaultPostgresRestartMidRefresh: the database goes away inside a
// refresh transaction, after the token request left and before the rotated
// refresh token is written.
//
// On the store: Put, Get and new Updates fail with an error matching
// tokenstore.ErrUnavailable within their ctx, never a hang or a deletion;
// after the restart the record is intact and the next Update recovers.
//
// Through the engine, against the real OP with rotation and family
// revocation: the refresh fails with a *tokenstore.TemporaryError matching
// ErrUnavailable, callers get it again without a request while the engine
// backs off, the vault still holds the spent token; after the restart the
// engine writes the rotated token it kept in memory and refreshes with it,
// so no refresh token is sent twice and no invalid_grant happens (S23).
// Each both with a fast shutdown and a crash (immediate stop).
func TestVaultPostgresRestartMidRefresh(t *testing.T) {
	b := ownPostgres(t)
	for _, immediate := range []bool{false, true} {
		name := "fast"
		if immediate {
			name = "crash"
		}
		t.Run("store/"+name, func(t *testing.T) {
			ctx := context.Background()
			st := b.store(t, sqlstore.Config{LeaseTTL: time.Second})
			put(t, st, "u", "rt-1")
			err := st.Update(ctx, "u", func(ctx context.Context, tx tokenstore.Tx) error {
				if _, err := tx.Get(ctx); err != nil {
					return err
				}
				b.pg.Stop(immediate) // the token endpoint answered "rt-2" now
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				return tx.Put(cctx, []byte("rt-2"))
			})
			if !errors.Is(err, tokenstore.ErrUnavailable) {
				t.Fatalf("Update with the database down = %v", err)
			}
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if _, err := st.Get(cctx, "u"); !errors.Is(err, tokenstore.ErrUnavailable) {
				t.Fatalf("Get while down = %v", err)
			}
			if err := st.Update(cctx, "u", func(context.Context, tokenstore.Tx) error { return nil }); !errors.Is(err, tokenstore.ErrUnavailable) {
				t.Fatalf("Update while down = %v", err)
			}
			if err := b.pg.Restart(); err != nil {
				t.Fatal(err)
			}
			got, err := st.Get(ctx, "u")
			if err != nil || string(got) != "rt-1" {
				t.Fatalf("after restart: %q, %v (the record must be intact)", got, err)
			}
			put(t, st, "u", "rt-2") // the next call recovers (after the dead lease lapses)
			if got, _ := st.Get(ctx, "u"); string(got) != "rt-2" {
				t.Fatalf("after recovery: %q", got)
			}
		})
		t.Run("engine/"+name, func(t *testing.T) { engineRestart(t, b, immediate) })
	}
}

func engineRestart(t *testing.T, b *backend, immediate bool) {
	srv, c, toks := aliceAtReuseOP(t)
	defer b.pg.Restart() // a failure below must not leave the next subtest without a database
	ctx := context.Background()
	// The lease must outlast the shutdown below: a holder that loses its
	// lease has its token request cancelled.
	st := b.store(t, sqlstore.Config{LeaseTTL: 5 * time.Second})
	src, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: st, Key: "restart"}, toks)
	if err != nil {
		t.Fatal(err)
	}
	counter := countRefreshTokens(srv)
	var stopped atomic.Bool
	tokenPath := strings.TrimPrefix(srv.TokenURL, srv.Issuer)
	srv.SetInterceptor(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == tokenPath && stopped.CompareAndSwap(false, true) {
			b.pg.Stop(immediate) // then the OP answers: a rotated refresh token
		}
		return false
	})
	src.Invalidate(toks.OAuth2Token())
	_, err = src.Token()
	var te *tokenstore.TemporaryError
	if !errors.As(err, &te) || !errors.Is(err, tokenstore.ErrUnavailable) {
		t.Fatalf("refresh with the database gone = %v, want a *TemporaryError matching ErrUnavailable", err)
	}
	if n := srv.TokenRequests("refresh_token"); n != 1 {
		t.Fatalf("%d refresh requests, want 1", n)
	}
	// Backing off: the same error, no request, while the database is down.
	if _, err2 := src.Token(); err2 != err || srv.TokenRequests("refresh_token") != 1 {
		t.Fatalf("second call while backing off = %v", err2)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := engine.LoadRecord(cctx, st, "restart"); !errors.Is(err, tokenstore.ErrUnavailable) {
		t.Fatalf("LoadRecord while down = %v", err)
	}
	if err := b.pg.Restart(); err != nil {
		t.Fatal(err)
	}
	// The vault still holds the spent token (the write never landed); the
	// engine holds the rotated one.
	rec, err := engine.LoadRecord(ctx, st, "restart")
	if err != nil || rec.RefreshToken != toks.OAuth2Token().RefreshToken || rec.Subject != toks.Subject() {
		t.Fatalf("record after the restart: %v, %v", rec, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		time.Sleep(time.Until(te.RetryAfter))
		_, err = src.Token()
		if err == nil {
			break
		}
		if !errors.As(err, &te) || time.Now().After(deadline) {
			t.Fatalf("after the restart: %v", err)
		}
	}
	uses := counter.snapshot()
	presentedOnce(t, uses)
	if len(uses) != 2 || uses[toks.OAuth2Token().RefreshToken] != 1 {
		t.Fatalf("%d distinct refresh tokens sent, want the login's and the rotated one", len(uses))
	}
	rec, err = engine.LoadRecord(ctx, st, "restart")
	if err != nil || rec.RefreshToken == toks.OAuth2Token().RefreshToken {
		t.Fatalf("the vault kept the spent token: %v", err)
	}
}

// TestVaultNoPlaintext: after a real login and refreshes through the
// engine and the vault, neither a pg_dump of the database nor the SQLite
// files (database, WAL, shared memory) contain any 16-byte window of a
// refresh, access or ID token, nor the subject or the issuer (S26): the
// record is sealed whole, and access and ID tokens never reach a Store.
func TestVaultNoPlaintext(t *testing.T) {
	srv, err := oauthtest.Start(oauthtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			toks := loginAlice(t, srv)
			c, err := webClient(ctx, srv.Issuer, srv.RootCAs())
			if err != nil {
				t.Fatal(err)
			}
			st := b.store(t, sqlstore.Config{})
			var mu sync.Mutex
			secrets := []string{toks.OAuth2Token().RefreshToken, toks.OAuth2Token().AccessToken, toks.RawIDToken()}
			src, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: st, Key: fleetKey,
				OnRecordChange: func(_ context.Context, rec *tokenstore.Record) error {
					mu.Lock()
					secrets = append(secrets, rec.RefreshToken)
					mu.Unlock()
					return nil
				}}, toks)
			if err != nil {
				t.Fatal(err)
			}
			prev := toks.OAuth2Token()
			for range 3 {
				src.Invalidate(prev)
				tok, err := src.Token()
				if err != nil {
					t.Fatal(err)
				}
				secrets, prev = append(secrets, tok.AccessToken), tok
			}
			if len(secrets) != 3+3+3 {
				t.Fatalf("%d secrets collected, want 9 (3 rotations)", len(secrets))
			}
			var dump []byte
			if b.pg != nil {
				if dump, err = b.pg.Dump(b.pgDB); err != nil {
					t.Fatal(err)
				}
				if !bytes.Contains(dump, []byte("oauthsafe_tokens")) {
					t.Fatal("the dump does not hold the table")
				}
			} else {
				for _, suffix := range []string{"", "-wal", "-shm"} {
					f, _ := os.ReadFile(b.file + suffix)
					dump = append(dump, f...)
				}
			}
			if len(dump) < 1000 {
				t.Fatalf("dump of %d bytes: nothing to search", len(dump))
			}
			for _, s := range secrets {
				if len(s) < 16 {
					t.Fatalf("a token of %d bytes", len(s))
				}
				for i := 0; i+16 <= len(s); i += 8 {
					if bytes.Contains(dump, []byte(s[i:i+16])) {
						t.Fatalf("the dump contains token bytes at offset %d of a token", i)
					}
				}
			}
			for _, clear := range []string{toks.Subject(), srv.Issuer} {
				if bytes.Contains(dump, []byte(clear)) {
					t.Fatalf("the dump names the subject or the issuer")
				}
			}
		})
	}
}

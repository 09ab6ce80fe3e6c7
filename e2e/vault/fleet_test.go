package vault_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/e2e/internal/flow"
	"github.com/oauthsafe/oauthsafe/strictnet"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/tokenstore/sqlstore"
)

// The fleet test re-executes this test binary as replicas. Each replica
// opens the database with its own connection pool and serves the user from
// its own Client.UserPool: the user's engine (Client.TokenSource resumed
// from the vault), whose every refresh is one Store.Update that reads the
// sealed record, calls the real OP's token endpoint and writes the rotated
// refresh token.
const (
	envFleet     = "OAUTHSAFE_VAULT_FLEET"
	envIssuer    = "OAUTHSAFE_VAULT_ISSUER"
	envCAFile    = "OAUTHSAFE_VAULT_CA"
	envDriver    = "OAUTHSAFE_VAULT_DRIVER"
	envDSN       = "OAUTHSAFE_VAULT_DSN"
	envSeconds   = "OAUTHSAFE_VAULT_SECONDS"
	envGoroutine = "OAUTHSAFE_VAULT_GOROUTINES"
	envUserinfo  = "OAUTHSAFE_VAULT_USERINFO"
)

const fleetKey = "alice"

// fleetSeconds is how long each database's fleet runs: 12 s by default to
// keep CI within its budget (about 6 access-token lifetimes, 4 replicas, 24
// or more rotations); OAUTHSAFE_VAULT_SECONDS=30 runs the full 30 s.
func fleetSeconds() int {
	if n, err := strconv.Atoi(os.Getenv(envSeconds)); err == nil && n > 0 {
		return n
	}
	return 12
}

func webClient(ctx context.Context, issuer string, roots *x509.CertPool) (*oauthclient.Client, error) {
	return oauthclient.New(ctx, oauthclient.Config{
		Issuer: issuer, ClientID: oauthtest.ClientNative, RedirectURL: "http://127.0.0.1:41000/callback",
		Scopes: []string{"openid", "offline_access", oauthtest.ScopeAPIRead},
		HTTP:   strictnet.Config{RootCAs: roots},
	})
}

// aliceAtReuseOP starts the real OP with family revocation on reuse (a
// spent refresh token presented again revokes the whole grant), closed
// when the test ends, and returns it, the web client of it and a login of
// Alice's.
func aliceAtReuseOP(t *testing.T) (*oauthtest.Server, *oauthclient.Client, *oauthclient.Tokens) {
	t.Helper()
	srv, err := oauthtest.Start(oauthtest.Options{RevokeFamilyOnReuse: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	toks := loginAlice(t, srv)
	c, err := webClient(context.Background(), srv.Issuer, srv.RootCAs())
	if err != nil {
		t.Fatal(err)
	}
	return srv, c, toks
}

// loginAlice runs a real authorization-code flow and returns the tokens.
func loginAlice(t testing.TB, srv *oauthtest.Server) *oauthclient.Tokens {
	t.Helper()
	ctx := context.Background()
	c, err := webClient(ctx, srv.Issuer, srv.RootCAs())
	if err != nil {
		t.Fatal(err)
	}
	toks, _ := flow.Login(t, srv, c, oauthclient.StartOptions{}, "alice")
	if toks.OAuth2Token().RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	return toks
}

type fleetReport struct {
	Calls, Errors, Expired, Tokens, Invalid int
	FirstErr                                string
}

// TestVaultFleetChild is one replica of the fleet; it runs only when the
// fleet test starts this binary for it.
func TestVaultFleetChild(t *testing.T) {
	if os.Getenv(envFleet) != "1" {
		t.Skip("run by TestVaultFleetRefreshExactlyOnce")
	}
	ctx := context.Background()
	c, st := childClientAndStore(t, 0)
	// The replica's per-user pool: the user's engine is Client.TokenSource
	// resumed from the vault (no login in this process).
	users, err := c.UserPool(oauthclient.TokenSourceConfig{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	api := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.Config().HTTP.RootCAs}}, Timeout: 10 * time.Second}
	secs, _ := strconv.Atoi(os.Getenv(envSeconds))
	goroutines, _ := strconv.Atoi(os.Getenv(envGoroutine))
	end := time.Now().Add(time.Duration(secs) * time.Second)

	var rep fleetReport
	var mu sync.Mutex
	seen := map[string]bool{}
	var calls atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				calls.Add(1)
				tok, err := poolToken(ctx, users, fleetKey)
				mu.Lock()
				switch {
				case err != nil:
					rep.Errors++
					if rep.FirstErr == "" {
						rep.FirstErr = err.Error()
					}
				case !time.Now().Before(tok.Expiry):
					rep.Expired++
				case !seen[tok.AccessToken]:
					seen[tok.AccessToken] = true
					rep.Tokens++
					mu.Unlock()
					// A real API call with each new access token.
					req, _ := http.NewRequest("GET", srvUserinfo(), nil)
					req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
					resp, err := api.Do(req)
					mu.Lock()
					if err != nil || resp.StatusCode != 200 {
						rep.Invalid++
					}
					if err == nil {
						resp.Body.Close()
					}
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	rep.Calls = int(calls.Load())
	b, _ := json.Marshal(rep)
	fmt.Printf("FLEET %s\n", b)
}

func srvUserinfo() string { return os.Getenv(envUserinfo) }

// TestVaultFleetRefreshExactlyOnce: 4 OS processes × 50 goroutines share
// one database and one user whose access tokens live 1-2 s (expires_in is
// whole seconds), against the real OP with rotation and family revocation
// on reuse. Each process serves the user from its own Client.UserPool, so
// the user's engine is the real one (Client.TokenSource resumed from the
// vault) and every refresh is one vault transaction. Every refresh token is
// sent exactly once (counted at the server), no call fails (no
// invalid_grant), every call gets an unexpired token, and every new access
// token is accepted by the OP's userinfo endpoint. Once with PostgreSQL,
// once with SQLite (one file shared by the processes); 12 s each by
// default, OAUTHSAFE_VAULT_SECONDS=30 for the 30 s.
func TestVaultFleetRefreshExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("fleet test in -short mode")
	}
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) { runFleet(t, b, 4, 50) })
	}
}

func runFleet(t *testing.T, b *backend, procs, goroutines int) {
	srv, err := oauthtest.Start(oauthtest.Options{AccessTokenLifetime: 2 * time.Second, RevokeFamilyOnReuse: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	counter := countRefreshTokens(srv)
	toks := loginAlice(t, srv)
	ctx := context.Background()
	st := b.store(t, sqlstore.Config{})
	c, err := webClient(ctx, srv.Issuer, srv.RootCAs())
	if err != nil {
		t.Fatal(err)
	}
	// The login: its record goes to the vault, sealed.
	if _, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: st, Key: fleetKey}, toks); err != nil {
		t.Fatal(err)
	}
	secs := fleetSeconds()
	var wg sync.WaitGroup
	reports := make([]fleetReport, procs)
	for i := range procs {
		cmd := childCommand(t, srv, b, "^TestVaultFleetChild$")
		cmd.Env = append(cmd.Env, envFleet+"=1", envUserinfo+"="+srv.UserinfoURL,
			envSeconds+"="+strconv.Itoa(secs), envGoroutine+"="+strconv.Itoa(goroutines))
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
				line := sc.Text()
				lines = append(lines, line)
				if rest, ok := strings.CutPrefix(line, "FLEET "); ok {
					json.Unmarshal([]byte(rest), &reports[i])
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("replica %d: %v\n%v", i, err, lines)
			}
		}()
	}
	wg.Wait()
	uses := counter.snapshot()
	total, refreshes := fleetReport{}, len(uses)
	for i, r := range reports {
		t.Logf("replica %d: %+v", i, r)
		total.Calls += r.Calls
		total.Errors += r.Errors
		total.Expired += r.Expired
		total.Invalid += r.Invalid
		total.Tokens += r.Tokens
		if r.Calls == 0 {
			t.Errorf("replica %d made no call", i)
		}
		if r.FirstErr != "" {
			t.Errorf("replica %d: first error: %s", i, r.FirstErr)
		}
	}
	for _, n := range uses {
		if n != 1 {
			t.Errorf("a refresh token was sent %d times", n)
		}
	}
	if n := srv.TokenRequests("refresh_token"); n != refreshes {
		t.Errorf("%d refresh requests for %d distinct refresh tokens", n, refreshes)
	}
	if total.Errors+total.Expired+total.Invalid != 0 {
		t.Errorf("errors %d, expired tokens %d, tokens refused by the API %d", total.Errors, total.Expired, total.Invalid)
	}
	if min := secs; refreshes < min {
		t.Errorf("%d refreshes in %d s, want at least %d", refreshes, secs, min)
	}
	t.Logf("%d calls, %d refresh tokens each sent once, %d access tokens checked at the API", total.Calls, refreshes, total.Tokens)
	// The vault ends with the last rotated token, and the family was never
	// revoked (a reuse would have revoked it): a resumed engine refreshes.
	src, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: st, Key: fleetKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Token(); err != nil {
		t.Errorf("refresh with the stored token after the run: %v", err)
	}
	if uses := counter.snapshot(); len(uses) != refreshes+1 {
		t.Errorf("the final refresh did not send one new refresh token")
	}
}

// childCommand returns the command that runs this test binary's test run
// as a replica talking to srv and to b's database.
func childCommand(t *testing.T, srv *oauthtest.Server, b *backend, run string) *exec.Cmd {
	t.Helper()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, srv.CACertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run="+run, "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), envIssuer+"="+srv.Issuer, envCAFile+"="+caFile,
		envDriver+"="+b.driver, envDSN+"="+b.dsn)
	return cmd
}

// childClientAndStore is a replica's side of childCommand: the client of
// the parent's OP and the vault on the parent's database (LeaseTTL
// leaseTTL, 0 for the default).
func childClientAndStore(t *testing.T, leaseTTL time.Duration) (*oauthclient.Client, *sqlstore.Store) {
	t.Helper()
	ctx := context.Background()
	c, err := webClient(ctx, os.Getenv(envIssuer), childRoots(t))
	if err != nil {
		t.Fatal(err)
	}
	return c, childVault(ctx, t, leaseTTL)
}

// childRoots is a replica's side of childCommand: the roots that verify
// the parent's OP (envCAFile).
func childRoots(t testing.TB) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(os.Getenv(envCAFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return roots
}

// childVault opens the vault on the database the environment names
// (envDriver, envDSN: set by the parent for itself and its children),
// with LeaseTTL leaseTTL (0 for the default).
func childVault(ctx context.Context, t testing.TB, leaseTTL time.Duration) *sqlstore.Store {
	return childVaultWaiting(ctx, t, leaseTTL, 0)
}

// childVaultWaiting is childVault whose Update waits up to lockTimeout for
// the lease (0: the default, 2×leaseTTL).
func childVaultWaiting(ctx context.Context, t testing.TB, leaseTTL, lockTimeout time.Duration) *sqlstore.Store {
	t.Helper()
	db, err := sql.Open(os.Getenv(envDriver), os.Getenv(envDSN))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := sqlstore.New(ctx, sqlstore.Config{DB: db, Keys: keyList(key1), LeaseTTL: leaseTTL, LockTimeout: lockTimeout})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// loginUsers logs n users in (user-0 …) into st, each with a login of
// its own at srv.
func loginUsers(t *testing.T, c *oauthclient.Client, st tokenstore.Store, srv *oauthtest.Server, n int) {
	t.Helper()
	for i := range n {
		if _, err := c.TokenSource(context.Background(), oauthclient.TokenSourceConfig{Store: st, Key: userKey(i)}, loginAlice(t, srv)); err != nil {
			t.Fatal(err)
		}
	}
}

// askEvery50ms is a fleet replica's work: one goroutine per user (user-0
// … user-(n-1)) asks users for a token every 50 ms until end, then the
// pool is drained. loggedOut is called, under the lock that guards the
// counts, for every error matching tokenstore.ErrLoginRequired; every
// other error counts as temporary.
func askEvery50ms(ctx context.Context, t *testing.T, users *oauthclient.UserPool, n int, end time.Time, loggedOut func(i int, err error)) (calls, temporary int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				_, err := poolToken(ctx, users, userKey(i))
				mu.Lock()
				calls++
				switch {
				case err == nil:
				case errors.Is(err, tokenstore.ErrLoginRequired):
					loggedOut(i, err)
				default:
					temporary++
				}
				mu.Unlock()
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := users.Drain(dctx); err != nil {
		t.Errorf("Drain: %v", err)
	}
	return calls, temporary
}

// presentedTwice counts the refresh tokens in uses (refreshCounter's
// snapshot) presented more than once.
func presentedTwice(uses map[string]int) int {
	twice := 0
	for _, n := range uses {
		if n != 1 {
			twice++
		}
	}
	return twice
}

// presentedOnce fails t when a refresh token in uses (refreshCounter's
// snapshot) was presented more than once.
func presentedOnce(t *testing.T, uses map[string]int) {
	t.Helper()
	for _, n := range uses {
		if n != 1 {
			t.Fatalf("a refresh token was presented %d times", n)
		}
	}
}

// refreshCounter counts, at the server, how often each refresh token is
// presented to the token endpoint.
type refreshCounter struct {
	mu   sync.Mutex
	uses map[string]int
}

func countRefreshTokens(srv *oauthtest.Server) *refreshCounter {
	rc := &refreshCounter{uses: map[string]int{}}
	tokenPath := strings.TrimPrefix(srv.TokenURL, srv.Issuer)
	srv.SetHook(func(r *http.Request) {
		if r.URL.Path != tokenPath {
			return
		}
		if r.ParseForm() == nil && r.PostForm.Get("grant_type") == "refresh_token" {
			rc.mu.Lock()
			rc.uses[r.PostForm.Get("refresh_token")]++
			rc.mu.Unlock()
		}
	})
	return rc
}

func (rc *refreshCounter) snapshot() map[string]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return maps.Clone(rc.uses)
}

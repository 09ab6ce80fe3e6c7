package vault_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/authserver"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/tokenstore/sqlstore"
	"golang.org/x/oauth2"
)

// The fleet test re-executes this test binary as replicas. Each replica
// opens the database with its own pool, and its goroutines take access
// tokens from a per-process source whose refresh is one Store.Update:
// read the sealed refresh token, call the real OP's token endpoint, write
// the rotated one.
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
		Issuer: issuer, ClientID: authserver.ClientNative, RedirectURL: "http://127.0.0.1:41000/callback",
		Scopes: []string{"openid", "offline_access", authserver.ScopeAPIRead},
		HTTP:   oauthclient.HTTPConfig{RootCAs: roots},
	})
}

// loginAlice runs a real authorization-code flow and returns the tokens.
func loginAlice(t testing.TB, srv *authserver.Server) *oauthclient.Tokens {
	t.Helper()
	ctx := context.Background()
	c, err := webClient(ctx, srv.Issuer, srv.RootCAs())
	if err != nil {
		t.Fatal(err)
	}
	p, authURL, err := c.Start(oauthclient.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cb, err := srv.Login(ctx, authURL, "alice")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(cb)
	toks, err := c.Exchange(ctx, p, u.Query())
	if err != nil {
		t.Fatal(err)
	}
	if toks.RefreshToken() == "" {
		t.Fatal("no refresh token")
	}
	return toks
}

// record is what the fleet keeps in the vault.
type record struct {
	RT string `json:"rt"`
}

func saveRT(ctx context.Context, s tokenstore.Store, key, rt string) error {
	b, _ := json.Marshal(record{RT: rt})
	return s.Update(ctx, key, func(ctx context.Context, tx tokenstore.Tx) error { return tx.Put(ctx, b) })
}

// replicaSource keeps one access token per process and refreshes it in one
// Store transaction, like the engine does.
type replicaSource struct {
	store tokenstore.Store
	c     *oauthclient.Client
	mu    sync.Mutex
	cur   *oauth2.Token
}

func (r *replicaSource) Token(ctx context.Context) (*oauth2.Token, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur != nil && time.Until(r.cur.Expiry) > 300*time.Millisecond {
		return r.cur, nil
	}
	err := r.store.Update(ctx, fleetKey, func(ctx context.Context, tx tokenstore.Tx) error {
		b, err := tx.Get(ctx)
		if err != nil {
			return err
		}
		var rec record
		if err := json.Unmarshal(b, &rec); err != nil {
			return err
		}
		tok, err := r.c.Refresh(ctx, rec.RT)
		if err != nil {
			return err
		}
		if tok.RefreshToken != "" && tok.RefreshToken != rec.RT {
			nb, _ := json.Marshal(record{RT: tok.RefreshToken})
			if err := tx.Put(ctx, nb); err != nil {
				return err
			}
		}
		r.cur = tok
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r.cur, nil
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
	pem, err := os.ReadFile(os.Getenv(envCAFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	c, err := webClient(ctx, os.Getenv(envIssuer), roots)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open(os.Getenv(envDriver), os.Getenv(envDSN))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dialect := sqlstore.SQLite
	if os.Getenv(envDriver) == "pgx" {
		dialect = sqlstore.Postgres
	}
	st, err := sqlstore.New(ctx, sqlstore.Config{DB: db, Dialect: dialect, Keys: keyList{key1}})
	if err != nil {
		t.Fatal(err)
	}
	src := &replicaSource{store: st, c: c}
	api := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}, Timeout: 10 * time.Second}
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
				tok, err := src.Token(ctx)
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

// TestVaultFleetRefreshExactlyOnce: 4 OS processes × 50 goroutines share one
// database and one user whose access tokens live 2 s, against the real OP
// with rotation and family revocation on reuse: every refresh token is sent
// exactly once (counted at the server), no invalid_grant, every call gets a
// valid token. Once with PostgreSQL, once with SQLite.
func TestVaultFleetRefreshExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("fleet test in -short mode")
	}
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) { runFleet(t, b, 4, 50) })
	}
}

func runFleet(t *testing.T, b *backend, procs, goroutines int) {
	srv, err := authserver.Start(authserver.Options{AccessTokenLifetime: 2 * time.Second, RevokeFamilyOnReuse: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var mu sync.Mutex
	uses := map[string]int{}
	srv.SetHook(func(r *http.Request) {
		if r.URL.Path != "/oauth/token" && r.URL.Path != "/token" {
			return
		}
		if r.ParseForm() == nil && r.PostForm.Get("grant_type") == "refresh_token" {
			mu.Lock()
			uses[r.PostForm.Get("refresh_token")]++
			mu.Unlock()
		}
	})
	toks := loginAlice(t, srv)
	ctx := context.Background()
	st := b.store(t, sqlstore.Config{})
	if err := saveRT(ctx, st, fleetKey, toks.RefreshToken()); err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, srv.CACertPEM, 0o600)
	secs := fleetSeconds()
	var wg sync.WaitGroup
	reports := make([]fleetReport, procs)
	for i := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestVaultFleetChild$", "-test.v")
		cmd.Env = append(os.Environ(), envFleet+"=1", envIssuer+"="+srv.Issuer, envUserinfo+"="+srv.UserinfoURL, envCAFile+"="+caFile,
			envDriver+"="+b.driver, envDSN+"="+b.dsn, envSeconds+"="+strconv.Itoa(secs),
			envGoroutine+"="+strconv.Itoa(goroutines))
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
	mu.Lock()
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
	mu.Unlock()
	if total.Errors+total.Expired+total.Invalid != 0 {
		t.Errorf("errors %d, expired tokens %d, tokens refused by the API %d", total.Errors, total.Expired, total.Invalid)
	}
	if min := secs / 2; refreshes < min {
		t.Errorf("%d refreshes in %d s, want at least %d", refreshes, secs, min)
	}
	t.Logf("%d calls, %d refresh tokens each sent once, %d access tokens checked at the API", total.Calls, refreshes, total.Tokens)
	// The store ends with the last rotated token: it still refreshes.
	c, _ := webClient(ctx, srv.Issuer, srv.RootCAs())
	src := &replicaSource{store: st, c: c}
	if _, err := src.Token(ctx); err != nil {
		t.Errorf("refresh with the stored token after the run: %v", err)
	}
}

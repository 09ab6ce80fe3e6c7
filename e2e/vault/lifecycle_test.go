package vault_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/e2e/internal/flow"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/tokenstore/sqlstore"
)

// TestLeaseWaiterSeesDroppedRow: while one holder deletes a record (an
// invalid_grant, a logout), a waiter on the same key sees the record gone
// as soon as the holder lets go, not after its LockTimeout (30 s here): on
// the store, its fn runs and Get says ErrNotFound; through the engine, the
// waiting Token returns ErrLoginRequired at once. SQLite and PostgreSQL.
func TestLeaseWaiterSeesDroppedRow(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			st := b.store(t, sqlstore.Config{LockTimeout: 30 * time.Second})
			for _, viaEngine := range []bool{false, true} {
				rec := &engine.Record{RefreshToken: "rt-1", Issuer: "https://issuer.example", ClientID: "c"}
				if err := engine.SaveRecord(ctx, st, "u", rec); err != nil {
					t.Fatal(err)
				}
				inside, release := make(chan struct{}), make(chan struct{})
				held := make(chan error, 1)
				go func() {
					held <- st.Update(ctx, "u", func(ctx context.Context, tx tokenstore.Tx) error {
						if err := tx.Delete(ctx); err != nil {
							return err
						}
						close(inside)
						<-release
						return nil
					})
				}()
				<-inside
				waited := make(chan error, 1)
				var released time.Time
				go func() {
					if viaEngine {
						src, err := engine.NewSource(engine.SourceConfig{Store: st, Key: "u",
							Fetch: func(context.Context, *engine.Refresh) (*engine.Result, error) {
								return nil, errors.New("no token request may be made")
							}}, nil)
						if err != nil {
							waited <- err
							return
						}
						_, err = src.Token()
						waited <- err
						return
					}
					waited <- st.Update(ctx, "u", func(ctx context.Context, tx tokenstore.Tx) error {
						_, err := tx.Get(ctx)
						return err
					})
				}()
				time.Sleep(300 * time.Millisecond) // the waiter polls the held lease
				released = time.Now()
				close(release)
				if err := <-held; err != nil {
					t.Fatal(err)
				}
				err := <-waited
				d := time.Since(released)
				want := tokenstore.ErrNotFound
				if viaEngine {
					want = tokenstore.ErrLoginRequired
				}
				if !errors.Is(err, want) || d > 3*time.Second {
					t.Fatalf("engine=%v: waiter got %v after %v; want %v at once", viaEngine, err, d, want)
				}
			}
		})
	}
}

// TestPoolDrain: Drain on a UserPool whose user has a refresh in flight
// (held at the real OP's door): cut short by its ctx, it says so and the
// refresh goes on; once the OP answers, a second Drain returns nil, the
// rotated refresh token is in the vault, the lease is released (another
// holder gets the key at once), and the pool refuses further calls with
// ErrClosed. SQLite and PostgreSQL.
func TestPoolDrain(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			srv, err := oauthtest.Start(oauthtest.Options{RevokeFamilyOnReuse: true})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			c, err := webClient(ctx, srv.Issuer, srv.RootCAs())
			if err != nil {
				t.Fatal(err)
			}
			st := b.store(t, sqlstore.Config{})
			toks := loginAlice(t, srv)
			if _, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: st, Key: "u"}, toks); err != nil {
				t.Fatal(err)
			}
			pool, err := c.UserPool(oauthclient.TokenSourceConfig{Store: st})
			if err != nil {
				t.Fatal(err)
			}
			tokenPath := strings.TrimPrefix(srv.TokenURL, srv.Issuer)
			arrived, release := make(chan struct{}), make(chan struct{})
			srv.SetInterceptor(func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path == tokenPath {
					close(arrived)
					<-release
				}
				return false
			})
			got := make(chan error, 1)
			src, err := pool.Source(ctx, "u")
			if err != nil {
				t.Fatal(err)
			}
			go func() { _, err := src.TokenContext(ctx); got <- err }()
			<-arrived
			short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			if err := pool.Drain(short); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Drain cut short = %v, want the deadline", err)
			}
			close(release)
			if err := pool.Drain(ctx); err != nil {
				t.Fatalf("Drain = %v", err)
			}
			if err := <-got; err != nil {
				t.Fatalf("the refresh in flight = %v, want it finished", err)
			}
			rec, err := engine.LoadRecord(ctx, st, "u")
			if err != nil || rec.RefreshToken == toks.OAuth2Token().RefreshToken {
				t.Fatalf("the vault after Drain: %v (rotation stored: %v)", err, rec != nil && rec.RefreshToken != toks.OAuth2Token().RefreshToken)
			}
			free, cancel2 := context.WithTimeout(ctx, time.Second)
			defer cancel2()
			if err := st.Update(free, "u", func(context.Context, tokenstore.Tx) error { return nil }); err != nil {
				t.Fatalf("the lease after Drain: %v", err)
			}
			// A source handed out before Drain still serves its valid cached
			// token (TokenSource.Close); only new refreshes are refused.
			if tok, err := src.TokenContext(ctx); err != nil || tok.AccessToken == "" {
				t.Fatalf("a pooled source's cached token after Drain = %v, want it served", err)
			}
			if _, err := pool.Source(ctx, "u"); !errors.Is(err, engine.ErrClosed) {
				t.Fatalf("Source after Drain = %v, want ErrClosed", err)
			}
		})
	}
}

// TestUserPoolCarriesResource: against an OP that requires a refresh of a
// grant made for a resource to name it (RequireResource, as providers with
// one audience per token do), a user logged in for a resource is resumed
// from the vault by a new process's UserPool (a restart, an eviction) and
// refreshes: with no Resource configured, from the record; with
// TokenSourceConfig.Resource, from the configuration. The contrast: a record
// that lost its resource is refused by the OP (invalid_grant: the user
// would have to log in again).
func TestUserPoolCarriesResource(t *testing.T) {
	const api = "https://api.example.test/"
	ctx := context.Background()
	srv, err := oauthtest.Start(oauthtest.Options{RequireResource: true, RevokeFamilyOnReuse: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	b := newSQLite(t)
	st := b.store(t, sqlstore.Config{})
	login := func(key string) {
		c, err := webClient(ctx, srv.Issuer, srv.RootCAs())
		if err != nil {
			t.Fatal(err)
		}
		toks, _ := flow.Login(t, srv, c, oauthclient.StartOptions{Resource: []string{api}}, "alice")
		if _, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: st, Key: key}, toks); err != nil {
			t.Fatal(err)
		}
	}
	login("from-record")
	login("from-config")
	for _, tc := range []struct {
		key string
		cfg oauthclient.TokenSourceConfig
	}{
		{"from-record", oauthclient.TokenSourceConfig{Store: st}},
		{"from-config", oauthclient.TokenSourceConfig{Store: st, Resource: []string{api}}},
	} {
		c, err := webClient(ctx, srv.Issuer, srv.RootCAs()) // the restarted process
		if err != nil {
			t.Fatal(err)
		}
		pool, err := c.UserPool(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			src, err := pool.Source(ctx, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := src.Token()
			if err != nil {
				t.Fatalf("%s: refresh after the restart: %v", tc.key, err)
			}
			src.Invalidate(tok)
		}
	}
	// The record without its resource: the OP refuses the refresh.
	rec, err := engine.LoadRecord(ctx, st, "from-record")
	if err != nil || len(rec.Resources) != 1 || rec.Resources[0] != api {
		t.Fatalf("the record's resources: %v, %v", rec, err)
	}
	rec.Resources = nil
	if err := engine.SaveRecord(ctx, st, "stripped", rec); err != nil {
		t.Fatal(err)
	}
	c, _ := webClient(ctx, srv.Issuer, srv.RootCAs())
	pool, _ := c.UserPool(oauthclient.TokenSourceConfig{Store: st})
	if _, err = poolToken(ctx, pool, "stripped"); !errors.Is(err, tokenstore.ErrLoginRequired) {
		t.Fatalf("refresh without the resource = %v, want the OP's refusal (invalid_grant)", err)
	}
}

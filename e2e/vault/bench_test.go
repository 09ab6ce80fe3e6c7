package vault_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/tokenstore/sqlstore"
	"golang.org/x/oauth2"
)

// BenchmarkVaultRefresh measures one refresh through the engine on the
// vault without the token endpoint: a engine.Source whose FetchFunc
// answers at once with a rotated refresh token, so each op is the whole
// refresh transaction (take the lease, open and decode the record, seal
// and write the rotated one, release) plus the engine's single flight.
func BenchmarkVaultRefresh(b *testing.B) {
	for _, be := range []func(testing.TB) *backend{newSQLite, newPostgres} {
		bk := be(b)
		b.Run(bk.name, func(b *testing.B) {
			st := bk.store(b, sqlstore.Config{})
			ctx := context.Background()
			err := engine.SaveRecord(ctx, st, "u", &engine.Record{RefreshToken: "rt-0-0123456789abcdef0123456789abcdef",
				Subject: "sub-alice", Scopes: []string{"openid", "offline_access", "api.read"}, Issuer: "https://login.example.com", ClientID: "web"})
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			src, err := engine.NewSource(engine.SourceConfig{Store: st, Key: "u",
				Fetch: func(ctx context.Context, r *engine.Refresh) (*engine.Result, error) {
					n++
					r.Rotated("rt-" + strconv.Itoa(n) + "-0123456789abcdef0123456789abcdef")
					return &engine.Result{Token: &oauth2.Token{AccessToken: "at", TokenType: "Bearer",
						Expiry: time.Now().Add(time.Hour)}}, nil
				}}, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				tok, err := src.Token()
				if err != nil {
					b.Fatal(err)
				}
				src.Invalidate(tok)
			}
		})
	}
}

package vault_test

import (
	"context"
	"testing"

	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/tokenstore/sqlstore"
)

// BenchmarkVaultRefresh measures one refresh transaction without the token
// endpoint: take the lease, open the record, seal and write the rotated
// one, release.
func BenchmarkVaultRefresh(b *testing.B) {
	for _, be := range []func(testing.TB) *backend{newSQLite, newPostgres} {
		bk := be(b)
		b.Run(bk.name, func(b *testing.B) {
			st := bk.store(b, sqlstore.Config{})
			ctx := context.Background()
			rec := make([]byte, 400) // a typical record
			st.Update(ctx, "u", func(ctx context.Context, tx tokenstore.Tx) error { return tx.Put(ctx, rec) })
			b.ReportAllocs()
			for b.Loop() {
				err := st.Update(ctx, "u", func(ctx context.Context, tx tokenstore.Tx) error {
					v, err := tx.Get(ctx)
					if err != nil {
						return err
					}
					v[0]++
					return tx.Put(ctx, v)
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package vault_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/storelimit"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/tokenstore/sqlstore"
)

// TestStoreContract checks the tokenstore.Store contract on both databases:
// exclusion across goroutines and stores (two *sql.DB, as two replicas),
// Put durable at once, writes kept when fn fails, ErrLocked at the bound and
// when ctx ends, a lost lease refusing writes.
func TestStoreContract(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			a := b.store(t, sqlstore.Config{Owner: "a"})
			r := b.store(t, sqlstore.Config{Owner: "b"}) // another replica: its own pool

			t.Run("missing", func(t *testing.T) {
				if _, err := a.Get(ctx, "nobody"); !errors.Is(err, tokenstore.ErrNotFound) {
					t.Fatalf("Get = %v", err)
				}
				err := a.Update(ctx, "nobody", func(ctx context.Context, tx tokenstore.Tx) error {
					_, err := tx.Get(ctx)
					return err
				})
				if !errors.Is(err, tokenstore.ErrNotFound) {
					t.Fatalf("tx.Get = %v", err)
				}
			})

			t.Run("exclusion", func(t *testing.T) {
				const n = 40
				var inside, overlaps atomic.Int32
				var wg sync.WaitGroup
				for i := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						s := a
						if i%2 == 1 {
							s = r
						}
						err := s.Update(ctx, "counter", func(ctx context.Context, tx tokenstore.Tx) error {
							if inside.Add(1) != 1 {
								overlaps.Add(1)
							}
							defer inside.Add(-1)
							v := 0
							if b, err := tx.Get(ctx); err == nil {
								v, _ = strconv.Atoi(string(b))
							} else if !errors.Is(err, tokenstore.ErrNotFound) {
								return err
							}
							time.Sleep(time.Millisecond)
							return tx.Put(ctx, []byte(strconv.Itoa(v+1)))
						})
						if err != nil {
							t.Error(err)
						}
					}()
				}
				wg.Wait()
				got, err := r.Get(ctx, "counter")
				if err != nil || string(got) != strconv.Itoa(n) || overlaps.Load() != 0 {
					t.Fatalf("counter = %q, %v; overlaps %d", got, err, overlaps.Load())
				}
			})

			t.Run("put durable and kept when fn fails", func(t *testing.T) {
				boom := errors.New("boom")
				err := a.Update(ctx, "k", func(ctx context.Context, tx tokenstore.Tx) error {
					if err := tx.Put(ctx, []byte("v1")); err != nil {
						return err
					}
					// Durable now: another replica reads it while we still hold the lease.
					if got, err := r.Get(ctx, "k"); err != nil || string(got) != "v1" {
						t.Errorf("other replica reads %q, %v", got, err)
					}
					if got, err := tx.Get(ctx); err != nil || string(got) != "v1" {
						t.Errorf("tx.Get after Put = %q, %v", got, err)
					}
					return boom
				})
				if !errors.Is(err, boom) {
					t.Fatalf("Update = %v, want fn's error", err)
				}
				if got, err := r.Get(ctx, "k"); err != nil || string(got) != "v1" {
					t.Fatalf("after failed fn: %q, %v", got, err)
				}
			})

			t.Run("delete", func(t *testing.T) {
				err := a.Update(ctx, "k", func(ctx context.Context, tx tokenstore.Tx) error {
					if err := tx.Delete(ctx); err != nil {
						return err
					}
					_, err := tx.Get(ctx)
					if !errors.Is(err, tokenstore.ErrNotFound) {
						t.Errorf("tx.Get after Delete = %v", err)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := r.Get(ctx, "k"); !errors.Is(err, tokenstore.ErrNotFound) {
					t.Fatalf("Get after Delete = %v", err)
				}
			})

			t.Run("too large", func(t *testing.T) {
				err := a.Update(ctx, "big", func(ctx context.Context, tx tokenstore.Tx) error {
					return tx.Put(ctx, make([]byte, storelimit.MaxValueSize+1))
				})
				if !errors.Is(err, tokenstore.ErrTooLarge) {
					t.Fatalf("Update = %v", err)
				}
			})

			t.Run("tx after return", func(t *testing.T) {
				var saved tokenstore.Tx
				a.Update(ctx, "k", func(ctx context.Context, tx tokenstore.Tx) error { saved = tx; return nil })
				if err := saved.Put(ctx, []byte("late")); err == nil {
					t.Fatal("Put after Update returned succeeded")
				}
			})

			t.Run("locked: bound and ctx", func(t *testing.T) {
				short := b.store(t, sqlstore.Config{LeaseTTL: 300 * time.Millisecond, LockTimeout: 200 * time.Millisecond})
				held, release := make(chan struct{}), make(chan struct{})
				done := make(chan error)
				go func() {
					done <- a.Update(ctx, "held", func(ctx context.Context, tx tokenstore.Tx) error {
						close(held)
						<-release
						return nil
					})
				}()
				<-held
				ran := false
				err := short.Update(ctx, "held", func(context.Context, tokenstore.Tx) error { ran = true; return nil })
				if !errors.Is(err, tokenstore.ErrLocked) || ran {
					t.Fatalf("bound: err = %v, ran = %v", err, ran)
				}
				cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
				defer cancel()
				err = r.Update(cctx, "held", func(context.Context, tokenstore.Tx) error { ran = true; return nil })
				if !errors.Is(err, tokenstore.ErrLocked) || !errors.Is(err, context.DeadlineExceeded) || ran {
					t.Fatalf("ctx: err = %v, ran = %v", err, ran)
				}
				close(release)
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				// Released: the next holder gets in at once.
				if err := short.Update(ctx, "held", func(context.Context, tokenstore.Tx) error { return nil }); err != nil {
					t.Fatal(err)
				}
			})

			t.Run("lease renewed while held", func(t *testing.T) {
				s := b.store(t, sqlstore.Config{LeaseTTL: 300 * time.Millisecond})
				other := b.store(t, sqlstore.Config{LeaseTTL: 300 * time.Millisecond, LockTimeout: 100 * time.Millisecond})
				err := s.Update(ctx, "slow", func(ctx context.Context, tx tokenstore.Tx) error {
					time.Sleep(time.Second) // over three lease lifetimes
					if err := other.Update(context.Background(), "slow", func(context.Context, tokenstore.Tx) error { return nil }); !errors.Is(err, tokenstore.ErrLocked) {
						t.Errorf("another holder got in during a renewed lease: %v", err)
					}
					return tx.Put(ctx, []byte("slow"))
				})
				if err != nil {
					t.Fatal(err)
				}
			})

			t.Run("lost lease refuses writes", func(t *testing.T) {
				db := b.open(t)
				err := a.Update(ctx, "stolen", func(ctx context.Context, tx tokenstore.Tx) error {
					// Another holder takes the lease and writes (as after a stall
					// longer than LeaseTTL).
					if _, err := db.Exec(`UPDATE oauthsafe_tokens SET lease_owner = 'thief'`); err != nil {
						t.Fatal(err)
					}
					err := tx.Put(ctx, []byte("mine"))
					if !errors.Is(err, tokenstore.ErrLocked) {
						t.Errorf("Put after losing the lease = %v", err)
					}
					if ctx.Err() == nil {
						t.Error("fn's context not cancelled after the lease was lost")
					}
					return err
				})
				if !errors.Is(err, tokenstore.ErrLocked) {
					t.Fatalf("Update = %v", err)
				}
				if _, err := r.Get(ctx, "stolen"); !errors.Is(err, tokenstore.ErrNotFound) {
					t.Fatalf("the lost holder's write landed: %v", err)
				}
				db.Exec(`UPDATE oauthsafe_tokens SET lease_owner = ''`)
			})

			t.Run("values copied", func(t *testing.T) {
				v := []byte("abc")
				a.Update(ctx, "copy", func(ctx context.Context, tx tokenstore.Tx) error { return tx.Put(ctx, v) })
				v[0] = 'X'
				got, _ := a.Get(ctx, "copy")
				if !bytes.Equal(got, []byte("abc")) {
					t.Fatalf("stored value aliased the caller's slice: %q", got)
				}
			})
		})
	}
}

package vault_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/tokenstore/sqlstore"
)

// TestNewDetectsDatabase: New tells a real SQLite from a real PostgreSQL
// by asking the database, with no setting: on each a vault made by New
// stores and returns a record (a wrong guess fails its first statement);
// a Schema is refused (ErrConfig) on SQLite before any table is made, and
// used on PostgreSQL. PostgreSQL is asked first, so its server log never
// shows the SQLite probe failing.
func TestNewDetectsDatabase(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			db := b.open(t)
			st, err := sqlstore.New(ctx, sqlstore.Config{DB: db, Keys: keyList(key1)})
			if err != nil {
				t.Fatalf("New = %v", err)
			}
			if err := st.Update(ctx, "u", func(ctx context.Context, tx tokenstore.Tx) error {
				return tx.Put(ctx, []byte("record"))
			}); err != nil {
				t.Fatalf("Update = %v", err)
			}
			if v, err := st.Get(ctx, "u"); err != nil || string(v) != "record" {
				t.Fatalf("Get = %q, %v", v, err)
			}

			cfg := sqlstore.Config{DB: db, Keys: keyList(key1), Schema: "tenant", Table: "in_schema"}
			var n int
			if b.pg == nil {
				if _, err := sqlstore.New(ctx, cfg); !errors.Is(err, oauthsafe.ErrConfig) {
					t.Fatalf("New with a Schema on SQLite = %v, want ErrConfig", err)
				}
				if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name LIKE 'in_schema%'`).Scan(&n); err != nil || n != 0 {
					t.Fatalf("the refused New made %d tables (%v)", n, err)
				}
				return
			}
			if _, err := db.ExecContext(ctx, `CREATE SCHEMA tenant`); err != nil {
				t.Fatal(err)
			}
			if _, err := sqlstore.New(ctx, cfg); err != nil {
				t.Fatalf("New with a Schema on PostgreSQL = %v", err)
			}
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'tenant' AND table_name = 'in_schema'`).Scan(&n); err != nil || n != 1 {
				t.Fatalf("tenant.in_schema: %d tables (%v)", n, err)
			}
			if log := b.pg.Log(); strings.Contains(log, "sqlite_version") {
				t.Fatalf("the PostgreSQL server log shows the SQLite probe:\n%s", log)
			}
		})
	}
}

// TestNewUnreachableDatabase: a PostgreSQL address nobody listens on gives
// an error matching tokenstore.ErrUnavailable (temporary: the database may
// come back), not one matching ErrConfig (the database is not of an
// unsupported kind, it is not there).
func TestNewUnreachableDatabase(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	b := &backend{name: "postgres", driver: "pgx",
		dsn: "host=127.0.0.1 port=" + strconv.Itoa(port) + " user=postgres dbname=vault sslmode=disable connect_timeout=5"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = sqlstore.New(ctx, sqlstore.Config{DB: b.open(t), Keys: keyList(key1)})
	if !errors.Is(err, tokenstore.ErrUnavailable) || errors.Is(err, oauthsafe.ErrConfig) {
		t.Fatalf("New = %v, want ErrUnavailable", err)
	}
}

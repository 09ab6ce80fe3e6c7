// Package vault_test tests tokenstore/sqlstore against real databases:
// SQLite through modernc.org/sqlite and PostgreSQL (Debian's postgresql,
// started by the tests through internal/testkit/pgtest) through pgx's stdlib
// driver.
package vault_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/oauthsafe/oauthsafe/internal/testkit/pgtest"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/tokenstore/sqlstore"
	"golang.org/x/oauth2"
	_ "modernc.org/sqlite"
)

// backend is one database the tests run against.
type backend struct {
	name   string
	driver string
	dsn    string
	pg     *pgtest.Server // nil for SQLite
	pgDB   string
	file   string // the SQLite file
}

func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
}

func newSQLite(t testing.TB) *backend {
	p := filepath.Join(t.TempDir(), "vault.db")
	return &backend{name: "sqlite", driver: "sqlite", dsn: sqliteDSN(p), file: p}
}

var (
	pgOnce sync.Once
	pgSrv  *pgtest.Server
	pgErr  error
	pgSeq  atomic.Int64
)

// newPostgres returns a fresh database on the package's one PostgreSQL
// server (started on first use, stopped by TestMain).
func newPostgres(t testing.TB) *backend {
	t.Helper()
	pgOnce.Do(func() { pgSrv, pgErr = pgtest.Start() })
	if pgErr != nil {
		pgtest.New(t) // skips or fails by the package's rule
		t.Fatal(pgErr)
	}
	db := fmt.Sprintf("vault%d", pgSeq.Add(1))
	if err := pgSrv.CreateDB(db); err != nil {
		t.Fatal(err)
	}
	return &backend{name: "postgres", driver: "pgx", dsn: pgSrv.DSN(db), pg: pgSrv, pgDB: db}
}

// ownPostgres starts a PostgreSQL server for this test alone (for tests
// that stop or restart it).
func ownPostgres(t testing.TB) *backend {
	t.Helper()
	srv := pgtest.New(t)
	if err := srv.CreateDB("vault"); err != nil {
		t.Fatal(err)
	}
	return &backend{name: "postgres", driver: "pgx", dsn: srv.DSN("vault"), pg: srv, pgDB: "vault"}
}

func backends(t *testing.T) []*backend { return []*backend{newSQLite(t), newPostgres(t)} }

func (b *backend) open(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open(b.driver, b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// keyList is a Config.Keys of the "id:base64" items, the sealing key first.
func keyList(items ...string) secret.Value {
	v, err := secret.FromReader(strings.NewReader(strings.Join(items, ",")))
	if err != nil {
		panic(err)
	}
	return v
}

// fixedKey is the "id:base64" item of a fixed 32-byte key.
func fixedKey(id string, b byte) string {
	s := make([]byte, 32)
	for i := range s {
		s[i] = b + byte(i)
	}
	return id + ":" + base64.StdEncoding.EncodeToString(s)
}

var (
	key1 = fixedKey("k1", 1)
	key2 = fixedKey("k2", 101)
)

// store opens a Store on b with cfg's zero fields filled in.
func (b *backend) store(t testing.TB, cfg sqlstore.Config) *sqlstore.Store {
	t.Helper()
	if cfg.DB == nil {
		cfg.DB = b.open(t)
	}
	if cfg.Keys.IsZero() {
		cfg.Keys = keyList(key1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := sqlstore.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pgSrv != nil {
		pgSrv.Close()
	}
	os.Exit(code)
}

// poolToken is what a server does per request: the user's pooled source,
// then its token.
func poolToken(ctx context.Context, pool *oauthclient.UserPool, key string) (*oauth2.Token, error) {
	src, err := pool.Source(ctx, key)
	if err != nil {
		return nil, err
	}
	return src.TokenContext(ctx)
}

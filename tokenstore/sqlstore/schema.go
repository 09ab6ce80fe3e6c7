package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// dialect is the SQL dialect of the database, detected by New.
type dialect int

const (
	sqlite   dialect = iota + 1 // SQLite 3.35 or later (for RETURNING)
	postgres                    // PostgreSQL 11 or later
)

// detect asks db which database it is. PostgreSQL is asked first, so that
// its server log never shows a failed probe: its version() answers
// "PostgreSQL ...". SQLite has no version() (the statement fails, and
// SQLite keeps no server log) and answers sqlite_version(). When neither
// answers, a database that still answers a ping is asked version() once
// more (one statement may fail for a passing reason) before it is taken
// for one that answers neither way: a configuration error naming the
// supported ones.
// One that cannot be reached (the ping before the probes, or after both
// failed; ctx ending among the reasons) matches tokenstore.ErrUnavailable.
func detect(ctx context.Context, db *sql.DB) (dialect, error) {
	if err := db.PingContext(ctx); err != nil {
		return 0, detectErr(err)
	}
	var version string
	verr := db.QueryRowContext(ctx, `SELECT version()`).Scan(&version)
	if verr == nil && strings.HasPrefix(version, "PostgreSQL ") {
		return postgres, nil
	}
	var v string
	serr := db.QueryRowContext(ctx, `SELECT sqlite_version()`).Scan(&v)
	if serr == nil {
		return sqlite, nil
	}
	if verr != nil {
		// Neither probe answered: another database, or this one went away
		// since the ping, or one statement failed (a timeout, a connection
		// dropped and replaced). A database that is up is asked version()
		// once more before it is taken for one that has none.
		if err := db.PingContext(ctx); err != nil {
			return 0, detectErr(errors.Join(verr, serr, err))
		}
		if verr = db.QueryRowContext(ctx, `SELECT version()`).Scan(&version); verr == nil && strings.HasPrefix(version, "PostgreSQL ") {
			return postgres, nil
		}
		if verr != nil && ctx.Err() != nil {
			return 0, detectErr(errors.Join(verr, ctx.Err()))
		}
	}
	if verr != nil {
		return 0, cfgerr.New("sqlstore", "the database answers neither version() nor sqlite_version(): it must be PostgreSQL or SQLite")
	}
	return 0, cfgerr.New("sqlstore", "the database answers version() with %s: it must be PostgreSQL or SQLite", safetext.Quote(version, 80))
}

// detectErr wraps a failure to reach the database during detection as
// temporary (tokenstore.ErrUnavailable).
func detectErr(err error) error {
	return fmt.Errorf("sqlstore: detecting the database: %w: %w", tokenstore.ErrUnavailable, err)
}

// schemaVersion is the table layout this package writes. Older tables are
// migrated forward by New; a newer one is refused as a configuration
// error (this package cannot use that table).
const schemaVersion = 1

// validIdent accepts lowercase SQL identifiers of at most 48 characters, so
// that the name needs no quoting rules beyond double quotes, PostgreSQL does
// not fold it, and "<table>_schema" stays under PostgreSQL's 63-byte limit.
func validIdent(s string) bool {
	if s == "" || len(s) > 48 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// queries are the statements for one table in one dialect. Placeholders are
// written $1, $2... and rewritten to ?1, ?2... for SQLite.
type queries struct {
	migrate []string // version 0 -> 1
	schemaDDL,
	getSchema, setSchema,
	acquire, insert, renew, put, readBack, release, dropEmpty, get, listOld string
}

func buildQueries(d dialect, schema, table string) queries {
	q := func(name string) string {
		if schema != "" {
			return `"` + schema + `"."` + name + `"`
		}
		return `"` + name + `"`
	}
	t, st := q(table), q(table+"_schema")
	now := `CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)`
	blob, bigint := "BLOB", "INTEGER"
	if d == postgres {
		now = `CAST(extract(epoch from clock_timestamp()) * 1000 AS BIGINT)`
		blob, bigint = "BYTEA", "BIGINT"
	}
	r := queries{
		schemaDDL: `CREATE TABLE IF NOT EXISTS ` + st + ` (id ` + bigint + ` PRIMARY KEY CHECK (id = 1), version ` + bigint + ` NOT NULL)`,
		getSchema: `SELECT version FROM ` + st + ` WHERE id = 1`,
		setSchema: `INSERT INTO ` + st + ` (id, version) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET version = excluded.version WHERE ` + st + `.version < excluded.version`,
		migrate: []string{
			`CREATE TABLE IF NOT EXISTS ` + t + ` (
	key_hash    TEXT PRIMARY KEY,
	version     ` + bigint + ` NOT NULL,
	key_id      TEXT NOT NULL,
	sealed      ` + blob + `,
	updated_at  ` + bigint + ` NOT NULL,
	lease_owner TEXT NOT NULL,
	lease_until ` + bigint + ` NOT NULL
)`,
		},
		// acquire takes the lease when it is free or lapsed, and returns the
		// row in the same statement.
		acquire: `UPDATE ` + t + ` SET lease_owner = $2, lease_until = ` + now + ` + $3
WHERE key_hash = $1 AND (lease_owner = '' OR lease_until < ` + now + `)
RETURNING version, key_id, sealed`,
		insert: `INSERT INTO ` + t + ` (key_hash, version, key_id, sealed, updated_at, lease_owner, lease_until)
VALUES ($1, ` + now + ` * 1000, '', NULL, ` + now + `, '', 0) ON CONFLICT (key_hash) DO NOTHING`,
		renew: `UPDATE ` + t + ` SET lease_until = ` + now + ` + $3
WHERE key_hash = $1 AND lease_owner = $2 AND lease_until >= ` + now,
		// put writes only while this holder's lease is unexpired and the
		// row is at the version the transaction read.
		put: `UPDATE ` + t + ` SET sealed = $4, key_id = $5, version = $6, updated_at = ` + now + `, lease_until = ` + now + ` + $3
WHERE key_hash = $1 AND lease_owner = $2 AND lease_until >= ` + now + ` AND version = $7`,
		// readBack settles a write whose outcome is unknown.
		readBack:  `SELECT version, lease_owner FROM ` + t + ` WHERE key_hash = $1`,
		release:   `UPDATE ` + t + ` SET lease_owner = '', lease_until = 0 WHERE key_hash = $1 AND lease_owner = $2`,
		dropEmpty: `DELETE FROM ` + t + ` WHERE key_hash = $1 AND sealed IS NULL AND lease_owner = ''`,
		get:       `SELECT version, key_id, sealed FROM ` + t + ` WHERE key_hash = $1`,
		listOld:   `SELECT key_hash FROM ` + t + ` WHERE sealed IS NOT NULL AND key_id <> $1 AND key_hash > $2 ORDER BY key_hash LIMIT 100`,
	}
	if d == sqlite {
		for _, p := range []*string{&r.setSchema, &r.acquire, &r.insert, &r.renew, &r.put, &r.readBack, &r.release, &r.dropEmpty, &r.get, &r.listOld} {
			*p = strings.ReplaceAll(*p, "$", "?")
		}
	}
	return r
}

// migrate creates or upgrades the table. On PostgreSQL it runs in one
// transaction under an advisory lock, so replicas starting together do not
// race on the catalog; on SQLite every statement is idempotent and the
// database serialises writers.
func (s *Store) migrate(ctx context.Context) error {
	var ex interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
		QueryRowContext(context.Context, string, ...any) *sql.Row
	} = s.db
	if s.dialect == postgres {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return s.dbErr("migrate", err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7240815223)`); err != nil {
			return s.dbErr("migrate", err)
		}
		ex = tx
	}
	if _, err := ex.ExecContext(ctx, s.q.schemaDDL); err != nil {
		return s.dbErr("migrate", err)
	}
	var v int64
	switch err := ex.QueryRowContext(ctx, s.q.getSchema).Scan(&v); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return s.dbErr("migrate", err)
	}
	if v > schemaVersion {
		return cfgerr.New("sqlstore", "table %s has schema version %d, newer than this package knows (%d): run the newer version of the package, or use another Table", s.table, v, schemaVersion)
	}
	for _, stmt := range s.q.migrate[v:] {
		if _, err := ex.ExecContext(ctx, stmt); err != nil {
			return s.dbErr("migrate", err)
		}
	}
	if _, err := ex.ExecContext(ctx, s.q.setSchema, int64(schemaVersion)); err != nil {
		return s.dbErr("migrate", err)
	}
	if tx, ok := ex.(*sql.Tx); ok {
		if err := tx.Commit(); err != nil {
			return s.dbErr("migrate", err)
		}
	}
	return nil
}

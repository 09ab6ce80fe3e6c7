// Package websession is a reference server-side session store for the web
// recipe of the README (a backend calling an API for its users). Copy it,
// or check your own store against what it guarantees:
//
//   - Server-side. The browser's cookie carries only a random id (256
//     bits from crypto/rand); what it stands for (the user's store key in
//     the token vault) lives in the database, never in the cookie. Ids are
//     stored hashed (SHA-256), so a dump or backup of the table holds no
//     cookie anyone could present.
//   - It survives a restart when the vault does. Sessions are rows in a
//     database, the same one as the vault (SQLite or PostgreSQL), so a
//     restarted or replaced replica still knows every signed-in browser,
//     and a session never outlives or predates the record it points to
//     by a restore of one without the other.
//   - A new id at every login. Create always issues a fresh id and deletes
//     the session the request came with, if any: an id planted in a browser
//     before it signs in (session fixation) never becomes a signed-in
//     session.
//   - Sessions end. Each has an absolute lifetime (Config.MaxAge); End
//     deletes the row and clears the cookie (call it at logout, with
//     UserPool.End).
//
// The cookie is __Host- prefixed, Secure, HttpOnly and SameSite=Lax, so it
// is sent only over https, to this host, and never to scripts.
package websession

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// CookieName is the session cookie's name.
const CookieName = "__Host-session"

// Config configures New.
type Config struct {
	// DB is the database of the sessions, usually the vault's: SQLite or
	// PostgreSQL. New asks it which: a database whose SELECT version()
	// answers "PostgreSQL ..." gets PostgreSQL's $1 placeholders, one that
	// answers SELECT sqlite_version() SQLite's ?; any other (or one that
	// does not answer) is refused with ErrConfig. Required.
	DB *sql.DB
	// MaxAge is a session's absolute lifetime. Zero means 12 hours.
	MaxAge time.Duration
	// Now returns the current time. nil means time.Now.
	Now func() time.Time
}

// Store is a server-side session store on database/sql. It is safe for
// concurrent use, and by every replica sharing the database.
type Store struct {
	db     *sql.DB
	maxAge time.Duration
	now    func() time.Time
	q      func(sql string) string
}

// ErrConfig is returned by New for a missing DB, or one that is neither
// PostgreSQL nor SQLite.
var ErrConfig = errors.New("websession: invalid configuration")

// New creates the sessions table if it does not exist and returns the
// Store.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.DB == nil {
		return nil, ErrConfig
	}
	s := &Store{db: cfg.DB, maxAge: cfg.MaxAge, now: cfg.Now, q: func(q string) string { return q }}
	if s.maxAge == 0 {
		s.maxAge = 12 * time.Hour
	}
	if s.now == nil {
		s.now = time.Now
	}
	var version string
	switch {
	case s.db.QueryRowContext(ctx, `SELECT version()`).Scan(&version) == nil && strings.HasPrefix(version, "PostgreSQL "):
		s.q = postgresPlaceholders
	case s.db.QueryRowContext(ctx, `SELECT sqlite_version()`).Scan(&version) != nil:
		// Neither: not a database this store speaks, or it is down; never
		// a guess at its placeholders.
		return nil, fmt.Errorf("websession: the database is neither PostgreSQL nor SQLite, or did not answer (%w)", ErrConfig)
	}
	_, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS web_sessions (
	id_hash TEXT PRIMARY KEY,
	store_key TEXT NOT NULL,
	expires BIGINT NOT NULL)`)
	if err != nil {
		return nil, fmt.Errorf("websession: creating the table: %w", err)
	}
	return s, nil
}

// Create starts a signed-in session for the user whose store key is key:
// it deletes the session r came with (if any), stores a new random id and
// sets it as the cookie. Call it from callback.Config.OnLogin.
func (s *Store) Create(w http.ResponseWriter, r *http.Request, key string) error {
	if key == "" {
		return fmt.Errorf("websession: Create: empty store key (%w)", ErrConfig)
	}
	if err := s.deleteFrom(r); err != nil {
		return err
	}
	id := make([]byte, 32)
	rand.Read(id) // never fails (crypto/rand)
	raw := hex.EncodeToString(id)
	exp := s.now().Add(s.maxAge)
	if _, err := s.db.ExecContext(r.Context(), s.q(`INSERT INTO web_sessions (id_hash, store_key, expires) VALUES (?, ?, ?)`),
		hashID(raw), key, exp.Unix()); err != nil {
		return fmt.Errorf("websession: Create: %w", err)
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: raw, Path: "/", MaxAge: int(s.maxAge / time.Second),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return nil
}

// Key returns the store key of r's session, or "" when r has no live
// session (no cookie, an unknown or expired id, or the database could not
// be read): UserPool.Source answers "" with tokenstore.ErrLoginRequired.
func (s *Store) Key(r *http.Request) string {
	c, err := r.Cookie(CookieName)
	if err != nil || len(c.Value) != 64 {
		return ""
	}
	var key string
	var exp int64
	err = s.db.QueryRowContext(r.Context(), s.q(`SELECT store_key, expires FROM web_sessions WHERE id_hash = ?`), hashID(c.Value)).Scan(&key, &exp)
	if err != nil || s.now().Unix() >= exp {
		return ""
	}
	return key
}

// End deletes r's session and clears its cookie. Call it at logout.
func (s *Store) End(w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return s.deleteFrom(r)
}

// Prune deletes expired sessions; run it now and then.
func (s *Store) Prune(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, s.q(`DELETE FROM web_sessions WHERE expires <= ?`), s.now().Unix()); err != nil {
		return fmt.Errorf("websession: Prune: %w", err)
	}
	return nil
}

func (s *Store) deleteFrom(r *http.Request) error {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return nil
	}
	if _, err := s.db.ExecContext(r.Context(), s.q(`DELETE FROM web_sessions WHERE id_hash = ?`), hashID(c.Value)); err != nil {
		return fmt.Errorf("websession: deleting the previous session: %w", err)
	}
	return nil
}

func hashID(raw string) string {
	h := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(h[:])
}

// postgresPlaceholders turns each ? into $1, $2, ...
func postgresPlaceholders(q string) string {
	var out []byte
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			out = fmt.Appendf(out, "$%d", n)
			continue
		}
		out = append(out, q[i])
	}
	return string(out)
}

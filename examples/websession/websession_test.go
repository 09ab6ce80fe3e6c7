package websession

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/oauthsafe/oauthsafe/internal/testkit/pgtest"
	_ "modernc.org/sqlite"
)

// TestSessionStoreGuarantees checks each promise of the package doc on a
// real SQLite file and a real PostgreSQL: the cookie holds only a random
// id, stored hashed; sessions survive a restart (a new Store on a reopened
// database); Create issues a new id and deletes the one the request came
// with; sessions expire after MaxAge; End deletes the session.
func TestSessionStoreGuarantees(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "vault.db")
		open := func() *sql.DB {
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
			if err != nil {
				t.Fatal(err)
			}
			return db
		}
		checkGuarantees(t, open)
	})
	t.Run("postgres", func(t *testing.T) {
		pg := pgtest.New(t)
		if err := pg.CreateDB("sessions"); err != nil {
			t.Fatal(err)
		}
		open := func() *sql.DB {
			db, err := sql.Open("pgx", pg.DSN("sessions"))
			if err != nil {
				t.Fatal(err)
			}
			return db
		}
		checkGuarantees(t, open)
	})
}

func checkGuarantees(t *testing.T, open func() *sql.DB) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	db := open()
	s, err := New(ctx, Config{DB: db, MaxAge: time.Hour, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	// A browser arrives with an id planted before login (fixation).
	planted := strings.Repeat("ab", 32)
	req := httptest.NewRequest("GET", "https://app.example/callback", nil)
	req.AddCookie(&http.Cookie{Name: CookieName, Value: planted})
	if s.Key(req) != "" {
		t.Fatal("an unknown id resolves")
	}
	first := login(t, s, nil, "user-key-1")
	if first == planted || len(first) != 64 {
		t.Fatalf("Create kept or shortened the id: %q", first)
	}
	if got := s.Key(withCookie(first)); got != "user-key-1" {
		t.Fatalf("Key = %q", got)
	}
	// Server-side, hashed: the table holds no cookie value.
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM web_sessions WHERE id_hash = '`+first+`' OR store_key = '`+first+`'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the raw id is stored (%d rows, %v)", n, err)
	}
	// A second login from the same browser: a new id, the old one is gone.
	second := login(t, s, withCookie(first), "user-key-1")
	if second == first || s.Key(withCookie(first)) != "" || s.Key(withCookie(second)) != "user-key-1" {
		t.Fatal("Create did not rotate the session id")
	}
	// A restart: a new Store on a reopened database still knows it.
	db.Close()
	db = open()
	defer db.Close()
	s, err = New(ctx, Config{DB: db, MaxAge: time.Hour, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if s.Key(withCookie(second)) != "user-key-1" {
		t.Fatal("the session did not survive a restart")
	}
	// End deletes it and clears the cookie.
	w := httptest.NewRecorder()
	if err := s.End(w, withCookie(second)); err != nil {
		t.Fatal(err)
	}
	if s.Key(withCookie(second)) != "" || !strings.Contains(w.Header().Get("Set-Cookie"), "Max-Age=0") {
		t.Fatal("End kept the session")
	}
	// Expiry: absolute, after MaxAge.
	third := login(t, s, nil, "user-key-2")
	now = now.Add(time.Hour)
	if s.Key(withCookie(third)) != "" {
		t.Fatal("an expired session resolves")
	}
	if err := s.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM web_sessions`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("Prune left %d sessions (%v)", n, err)
	}
	if _, err := New(ctx, Config{}); err != ErrConfig {
		t.Fatalf("New without DB = %v", err)
	}
	// A database that answers neither probe (here: none at all, a closed
	// port) is refused, never given guessed placeholders.
	down, err := sql.Open("pgx", "postgres://u@127.0.0.1:1/x?connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	if _, err := New(ctx, Config{DB: down}); !errors.Is(err, ErrConfig) {
		t.Fatalf("New over a database that does not answer = %v, want ErrConfig", err)
	}
}

// login runs Create as OnLogin does and returns the new cookie's value.
func login(t *testing.T, s *Store, r *http.Request, key string) string {
	t.Helper()
	if r == nil {
		r = httptest.NewRequest("GET", "https://app.example/callback", nil)
	}
	w := httptest.NewRecorder()
	if err := s.Create(w, r, key); err != nil {
		t.Fatal(err)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == CookieName && c.Secure && c.HttpOnly && c.Path == "/" && c.SameSite == http.SameSiteLaxMode {
			return c.Value
		}
	}
	t.Fatal("Create set no secure session cookie")
	return ""
}

func withCookie(v string) *http.Request {
	r := httptest.NewRequest("GET", "https://app.example/", nil)
	r.AddCookie(&http.Cookie{Name: CookieName, Value: v})
	return r
}

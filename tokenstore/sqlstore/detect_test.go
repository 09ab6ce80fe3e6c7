package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/oauthsafe/oauthsafe"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// oddDB is a hand-written database/sql connector for the hostile cases of
// detection (the real SQLite and PostgreSQL are detected in e2e/vault): a
// database that answers SELECT version() with version (or fails it when
// version is ""), and fails every other statement. With cutAfterPing, the
// connection is cut right after the first ping succeeds: every later
// statement and ping fails, as for a database that went away between the
// ping and the probes. It records the statements it was sent.
type oddDB struct {
	version      string
	cutAfterPing bool
	// versionFails fails that many SELECT version() first (a statement
	// timeout, a connection dropped and replaced).
	versionFails int

	mu    sync.Mutex
	isCut bool
	sent  []string
}

var (
	errOdd    = errors.New("odd: no such function")
	errOddCut = errors.New("odd: connection cut")
)

func (d *oddDB) Connect(context.Context) (driver.Conn, error) { return oddConn{d}, nil }
func (d *oddDB) Driver() driver.Driver                        { return d }
func (d *oddDB) Open(string) (driver.Conn, error)             { return oddConn{d}, nil }

type oddConn struct{ d *oddDB }

func (c oddConn) Prepare(string) (driver.Stmt, error) { return nil, errOdd }
func (c oddConn) Close() error                        { return nil }
func (c oddConn) Begin() (driver.Tx, error)           { return nil, errOdd }

func (c oddConn) Ping(context.Context) error {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	if c.d.isCut {
		return errOddCut
	}
	c.d.isCut = c.d.cutAfterPing
	return nil
}

func (c oddConn) QueryContext(_ context.Context, q string, _ []driver.NamedValue) (driver.Rows, error) {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	c.d.sent = append(c.d.sent, q)
	if c.d.isCut {
		return nil, errOddCut
	}
	if q == "SELECT version()" && c.d.versionFails > 0 {
		c.d.versionFails--
		return nil, errOddCut
	}
	if q == "SELECT version()" && c.d.version != "" {
		return &oddRows{value: c.d.version}, nil
	}
	return nil, errOdd
}

func (c oddConn) ExecContext(_ context.Context, q string, _ []driver.NamedValue) (driver.Result, error) {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	c.d.sent = append(c.d.sent, q)
	return nil, errOdd
}

type oddRows struct {
	value string
	done  bool
}

func (r *oddRows) Columns() []string { return []string{"version"} }
func (r *oddRows) Close() error      { return nil }
func (r *oddRows) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	dest[0] = r.value
	return nil
}

// TestNewRefusesUnsupportedDatabase: a database that is neither PostgreSQL
// nor SQLite (its version() answers something else, or it answers neither
// probe) is refused with an error matching ErrConfig that names the
// supported databases and, cleaned, what version() answered; New sends it
// nothing but the two probes (no table is created).
func TestNewRefusesUnsupportedDatabase(t *testing.T) {
	keys, err := NewSealingKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	probes := []string{"SELECT version()", "SELECT sqlite_version()"}
	for name, tc := range map[string]struct {
		version, says string
		sent          []string
	}{
		"another version()":   {"8.0.36-MySQL Community Server", `"8.0.36-MySQL Community Server"`, probes},
		"a hostile version()": {"CockroachDB\x1b[2J\u202e v24\nPostgreSQL", `"CockroachDB[2J v24 PostgreSQL"`, probes},
		// Asked once more after a ping: one failed statement is not a
		// database without version().
		"no version()": {"", "neither version() nor sqlite_version()", append(probes, "SELECT version()")},
	} {
		t.Run(name, func(t *testing.T) {
			d := &oddDB{version: tc.version}
			db := sql.OpenDB(d)
			defer db.Close()
			_, err := New(context.Background(), Config{DB: db, Keys: keys})
			if !errors.Is(err, oauthsafe.ErrConfig) || errors.Is(err, tokenstore.ErrUnavailable) {
				t.Fatalf("New = %v, want ErrConfig", err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "sqlstore: ") || !strings.Contains(msg, "PostgreSQL or SQLite") || !strings.Contains(msg, tc.says) {
				t.Errorf("New = %q: does not name the supported databases and %s", msg, tc.says)
			}
			if strings.Join(d.sent, "; ") != strings.Join(tc.sent, "; ") {
				t.Errorf("sent %q, want only the probes %q", d.sent, tc.sent)
			}
		})
	}
}

// TestNewDatabaseGoneDuringDetection: a database that answers the ping and
// then goes away before the probes is unavailable (an error matching
// tokenstore.ErrUnavailable), not a database of an unsupported kind.
func TestNewDatabaseGoneDuringDetection(t *testing.T) {
	keys, err := NewSealingKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(&oddDB{cutAfterPing: true})
	defer db.Close()
	_, err = New(context.Background(), Config{DB: db, Keys: keys})
	if !errors.Is(err, tokenstore.ErrUnavailable) || errors.Is(err, oauthsafe.ErrConfig) {
		t.Fatalf("New = %v, want ErrUnavailable", err)
	}
}

// TestDetectSurvivesOneFailedProbe: a PostgreSQL whose first version()
// fails (a statement timeout, a dropped connection) while it still answers
// pings is asked once more and found, never refused as a database of
// another kind; one that fails every time is refused (ErrConfig).
func TestDetectSurvivesOneFailedProbe(t *testing.T) {
	ctx := context.Background()
	d := &oddDB{version: "PostgreSQL 16.4 on x86_64-pc-linux-gnu", versionFails: 1}
	db := sql.OpenDB(d)
	defer db.Close()
	if got, err := detect(ctx, db); err != nil || got != postgres {
		t.Fatalf("detect = %v, %v; want PostgreSQL (sent %q)", got, err, d.sent)
	}
	d2 := &oddDB{version: "PostgreSQL 16.4", versionFails: 2}
	db2 := sql.OpenDB(d2)
	defer db2.Close()
	if _, err := detect(ctx, db2); !errors.Is(err, oauthsafe.ErrConfig) {
		t.Fatalf("detect after two failures = %v, want ErrConfig", err)
	}
}

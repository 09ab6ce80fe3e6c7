package sqlstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/internal/storelimit"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// Config configures New. Each field documents its zero value. New copies
// it. A Config prints (Format) and encodes to JSON without its keys.
type Config struct {
	// DB is the database: PostgreSQL 11 or later (e.g. through pgx's
	// stdlib driver) or SQLite 3.35 or later (e.g. through
	// modernc.org/sqlite, with a busy_timeout in the DSN). New tells which
	// by asking it: PostgreSQL answers SELECT version() with
	// "PostgreSQL ...", SQLite answers SELECT sqlite_version(); any other
	// database is refused. The caller opened it with a driver and closes
	// it after the Store is no longer used. Required.
	DB *sql.DB
	// Schema is the PostgreSQL schema holding the table. "" means the
	// connection's search_path (usually public). It must be "" for SQLite.
	// Lowercase letters, digits and '_', at most 48 characters.
	Schema string
	// Table is the table name; New also creates Table+"_schema" for the
	// schema version. "" means "oauthsafe_tokens". Same character rule as
	// Schema.
	Table string
	// Keys are the sealing keys, never written to the database: "id:base64"
	// items separated by commas or white space, the sealing key first,
	// every key opening (standard or URL-safe base64 of 32 random bytes,
	// padding optional; NewSealingKey makes one). Load them like any
	// secret: secret.FromEnv, secret.FromFile (a 0600 file of yours), or
	// secret.FromReader for a KMS's answer. An id is 1 to 64 characters
	// from [A-Za-z0-9._-]. Required; New reads it once.
	Keys secret.Value
	// Owner names this replica in the lease_owner column, for operators.
	// "" means "hostname:pid". Each transaction adds a random suffix, so
	// two transactions never share a lease.
	Owner string
	// LeaseTTL is how long a lease lasts unless renewed; it is renewed every
	// LeaseTTL/3 while held, and a replica killed while holding it blocks
	// others for at most LeaseTTL. Zero means 15 s; at least 300 ms.
	LeaseTTL time.Duration
	// LockTimeout bounds how long Update waits for another holder's lease
	// before returning ErrLocked. Zero means 2×LeaseTTL.
	LockTimeout time.Duration
}

// Format prints cfg under every fmt verb without its keys (S12): a
// Config is safe to log.
func (c Config) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "sqlstore.Config{schema=%s, table=%s, keys=%v, owner=%s, lease_ttl=%s, lock_timeout=%s}",
		cleanID(c.Schema), cleanID(c.Table), c.Keys, cleanID(c.Owner), c.LeaseTTL, c.LockTimeout)
}

// Store is a tokenstore.Store in one SQL table. It is safe for concurrent
// use by any number of goroutines, processes and replicas sharing the
// database. It holds the sealing keys and prints (Format) only its table.
// The
// zero value (and a nil *Store) answers errors matching
// ErrConfig (package oauthsafe); use New.
type Store struct {
	db      *sql.DB
	dialect dialect
	table   string // qualified name, for the additional data
	q       queries
	seal    *sealer
	owner   string
	ttl     time.Duration
	wait    time.Duration
	seen    *generations
}

// ErrRollback means a record is older than one this Store has already read
// or written for the same key: an earlier (version, key id, sealed) row was
// written back (a restored backup, an attacker with write access to the
// table). The version is the record's generation and is bound into the
// sealing's additional data, so it cannot be raised without the key. The
// record is refused and left in place; it is not a logout. A process that
// never saw the newer version cannot tell.
var ErrRollback = errors.New("sqlstore: the record is older than one this process has already seen (rolled back); refused")

// generations remembers, per row, the highest version this Store read or
// wrote, for ErrRollback. It is bounded: past maxGenerations rows an
// arbitrary entry is forgotten.
type generations struct {
	mu sync.Mutex
	m  map[string]int64
}

const maxGenerations = 100000

// set records version as row h's newest.
func (g *generations) set(h string, version int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.setLocked(h, version)
}

func (g *generations) setLocked(h string, version int64) {
	if _, ok := g.m[h]; !ok && len(g.m) >= maxGenerations {
		for k := range g.m {
			delete(g.m, k)
			break
		}
	}
	g.m[h] = version
}

// check records version for row h, or refuses it when it is lower than
// one seen before.
func (g *generations) check(h string, version int64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if last, ok := g.m[h]; ok && version < last {
		return ErrRollback
	}
	g.setLocked(h, version)
	return nil
}

var _ tokenstore.Store = (*Store)(nil)

// New checks cfg, reads the keys, asks the database which it is
// (PostgreSQL or SQLite, see Config.DB), and creates or migrates the
// table. An incomplete or invalid cfg (a malformed key list among them;
// the error names the item's position, never key material) gives an error
// matching ErrConfig (package oauthsafe) before any I/O. A database other
// than PostgreSQL and SQLite (New writes nothing to it), a Schema on
// SQLite (New creates no table) and a table written by a newer version of
// this package match ErrConfig too. A database that cannot be reached, or
// fails while New uses it, gives an error matching
// tokenstore.ErrUnavailable.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.DB == nil || cfg.Keys.IsZero() {
		return nil, cfgerr.New("sqlstore", "Config.DB and Config.Keys are required")
	}
	if cfg.Table == "" {
		cfg.Table = "oauthsafe_tokens"
	}
	if !validIdent(cfg.Table) || cfg.Schema != "" && !validIdent(cfg.Schema) {
		return nil, cfgerr.New("sqlstore", "Table and Schema must be 1-48 characters from [a-z0-9_], not starting with a digit")
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = 15 * time.Second
	}
	if cfg.LeaseTTL < 300*time.Millisecond || cfg.LockTimeout < 0 {
		return nil, cfgerr.New("sqlstore", "LeaseTTL must be at least 300ms and LockTimeout not negative")
	}
	if cfg.LockTimeout == 0 {
		cfg.LockTimeout = 2 * cfg.LeaseTTL
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = host + ":" + strconv.Itoa(os.Getpid())
	}
	keys, err := parseKeys(cfg.Keys.Reveal())
	if err != nil {
		return nil, err
	}
	seal, err := newSealer(keys)
	if err != nil {
		return nil, err
	}
	d, err := detect(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	if d == sqlite && cfg.Schema != "" {
		return nil, cfgerr.New("sqlstore", "Schema is for PostgreSQL only, and the database is SQLite")
	}
	s := &Store{
		db: cfg.DB, dialect: d, q: buildQueries(d, cfg.Schema, cfg.Table),
		seal: seal, owner: cleanID(cfg.Owner), ttl: cfg.LeaseTTL, wait: cfg.LockTimeout,
		table: cfg.Table, seen: &generations{m: map[string]int64{}},
	}
	if cfg.Schema != "" {
		s.table = cfg.Schema + "." + cfg.Table
	}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// keyHash names key's row: a hex SHA-256, so the table does not show the
// store keys.
func keyHash(key string) string {
	sum := sha256.Sum256([]byte("oauthsafe/sqlstore/key/v1\x00" + key))
	return hex.EncodeToString(sum[:])
}

// dbErr wraps a database failure as temporary (tokenstore.ErrUnavailable).
func (s *Store) dbErr(op string, err error) error {
	return fmt.Errorf("sqlstore: %s: %w: %w", op, tokenstore.ErrUnavailable, err)
}

var errNotNew = cfgerr.New("sqlstore", "Store not made by New")

func (s *Store) ready() error {
	if s == nil || s.seal == nil {
		return errNotNew
	}
	return nil
}

var errLeaseLost = fmt.Errorf("sqlstore: the lease lapsed or was taken over; nothing was written: %w", tokenstore.ErrLocked)

// Get implements tokenstore.Store: it reads and opens key's record without
// a lease. A record that does not open gives an *OpenError.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	h := keyHash(key)
	var version int64
	var keyID string
	var sealed []byte
	switch err := s.db.QueryRowContext(ctx, s.q.get, h).Scan(&version, &keyID, &sealed); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, tokenstore.ErrNotFound
	case err != nil:
		return nil, s.dbErr("get", err)
	}
	if sealed == nil {
		return nil, tokenstore.ErrNotFound
	}
	v, err := s.seal.open(s.table, h, version, keyID, sealed)
	if err != nil {
		return nil, err
	}
	if err := s.seen.check(h, version); err != nil {
		return nil, err
	}
	return v, nil
}

// Update implements tokenstore.Store with a lease on key's row: see the
// package doc. Waiting for another holder ends with an error matching
// tokenstore.ErrLocked after LockTimeout or when ctx ends; a database
// failure matches tokenstore.ErrUnavailable. fn's ctx is cancelled if the
// lease is lost meanwhile.
func (s *Store) Update(ctx context.Context, key string, fn func(ctx context.Context, tx tokenstore.Tx) error) error {
	if err := s.ready(); err != nil {
		return err
	}
	return s.update(ctx, keyHash(key), fn)
}

func (s *Store) update(ctx context.Context, h string, fn func(ctx context.Context, tx tokenstore.Tx) error) (err error) {
	t, err := s.acquire(ctx, h)
	if err != nil {
		return err
	}
	fctx, cancel := context.WithCancelCause(ctx)
	t.cancel = cancel
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t.renew(ctx, stop)
	}()
	defer func() {
		t.mu.Lock()
		t.done = true
		t.mu.Unlock()
		close(stop)
		wg.Wait()
		cancel(nil)
		if rerr := t.release(ctx); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	return fn(fctx, t)
}

// acquire takes the lease on row h, polling with backoff.
func (s *Store) acquire(ctx context.Context, h string) (*tx, error) {
	var suffix [8]byte
	rand.Read(suffix[:])
	t := &tx{s: s, hash: h, owner: s.owner + "/" + hex.EncodeToString(suffix[:])}
	deadline := time.Now().Add(s.wait)
	wait := 2 * time.Millisecond
	for {
		start := time.Now()
		var keyID string
		var sealed []byte
		err := s.db.QueryRowContext(ctx, s.q.acquire, h, t.owner, s.ttl.Milliseconds()).Scan(&t.version, &keyID, &sealed)
		switch {
		case err == nil:
			t.keyID, t.sealed, t.deadline = keyID, sealed, start.Add(s.ttl)
			return t, nil
		case errors.Is(err, sql.ErrNoRows):
			// No free row: either another holder has it, or there is none
			// (never written, or dropped while we waited: the holder
			// deleted the record). Insert it; if that inserts, take it at
			// once and see the record is gone, rather than wait out
			// LockTimeout for a row that no longer exists.
			res, err := s.db.ExecContext(ctx, s.q.insert, h)
			if err != nil && !s.busy(err) {
				return nil, s.dbErr("lease", err)
			}
			if err == nil {
				if n, _ := res.RowsAffected(); n == 1 {
					continue
				}
			}
		case s.busy(err):
		case ctx.Err() != nil:
			return nil, fmt.Errorf("sqlstore: waiting for the lease: %w: %w", tokenstore.ErrLocked, context.Cause(ctx))
		default:
			return nil, s.dbErr("lease", err)
		}
		if !time.Now().Before(deadline) {
			return nil, fmt.Errorf("sqlstore: another holder kept the lease for %v: %w", s.wait, tokenstore.ErrLocked)
		}
		d := min(jitter(wait), time.Until(deadline))
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("sqlstore: waiting for the lease: %w: %w", tokenstore.ErrLocked, context.Cause(ctx))
		case <-timer.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// busy reports SQLite's "database is locked" (another writer holds it
// beyond busy_timeout), which is a reason to wait, not a failure.
func (s *Store) busy(err error) bool {
	if s.dialect != sqlite || err == nil {
		return false
	}
	m := err.Error()
	return strings.Contains(m, "SQLITE_BUSY") || strings.Contains(m, "database is locked")
}

func jitter(d time.Duration) time.Duration {
	n, _ := rand.Int(rand.Reader, big.NewInt(int64(d)))
	return d/2 + time.Duration(n.Int64())/2
}

// tx is one lease on one row; it implements tokenstore.Tx.
type tx struct {
	s      *Store
	hash   string
	owner  string
	cancel context.CancelCauseFunc

	mu       sync.Mutex
	done     bool
	deadline time.Time // local time by which the lease surely lapses unless extended
	version  int64
	keyID    string
	sealed   []byte // as read at acquire, opened lazily
	opened   bool
	value    []byte // nil: no record
	openErr  error
	unsure   *unsureWrite // a write whose outcome is not known yet
}

// unsureWrite is a write that failed in a way that leaves its outcome
// unknown (the statement may have committed and its acknowledgement been
// lost): the version it wrote and what.
type unsureWrite struct {
	version int64
	value   []byte
	put     bool
	start   time.Time
}

// renew extends the lease every ttl/3 until stop closes. A renewal that
// finds the lease gone, or failures until the lease may have lapsed, cancel
// fn's context.
func (t *tx) renew(ctx context.Context, stop <-chan struct{}) {
	ticker := time.NewTicker(t.s.ttl / 3)
	defer ticker.Stop()
	rctx := context.WithoutCancel(ctx)
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
		}
		start := time.Now()
		c, cancel := context.WithTimeout(rctx, t.s.ttl/3)
		res, err := t.s.db.ExecContext(c, t.s.q.renew, t.hash, t.owner, t.s.ttl.Milliseconds())
		cancel()
		var n int64
		if err == nil {
			n, err = res.RowsAffected()
		}
		t.mu.Lock()
		switch {
		case err == nil && n == 1:
			t.deadline = start.Add(t.s.ttl)
		case err == nil:
			t.cancel(errLeaseLost) // taken over
		case !time.Now().Before(t.deadline):
			t.cancel(errLeaseLost) // lapsed while the database was unreachable
		}
		t.mu.Unlock()
	}
}

// LeaseDeadline is the lease method of the Store contract (see
// tokenstore.Tx): the time by which the lease surely lapses unless a
// renewal lands. The engine ends its token request
// before it, and fn's ctx is cancelled (with a cause matching
// tokenstore.ErrLocked) once it has passed without a renewal, or when a
// renewal finds the lease taken over. Until then a failed write may be
// retried: the lease still excludes every other holder.
func (t *tx) LeaseDeadline() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.deadline
}

func (t *tx) Get(ctx context.Context) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return nil, errors.New("sqlstore: Tx used after its Update returned")
	}
	if err := t.settle(ctx); err != nil {
		return nil, err
	}
	if !t.opened {
		t.opened = true
		if t.sealed != nil {
			t.value, t.openErr = t.s.seal.open(t.s.table, t.hash, t.version, t.keyID, t.sealed)
			if t.openErr == nil {
				t.openErr = t.s.seen.check(t.hash, t.version)
			}
		}
		t.sealed = nil
	}
	if t.openErr != nil {
		return nil, t.openErr
	}
	if t.value == nil {
		return nil, tokenstore.ErrNotFound
	}
	return bytes.Clone(t.value), nil
}

func (t *tx) Put(ctx context.Context, value []byte) error {
	if len(value) > storelimit.MaxValueSize {
		return tokenstore.ErrTooLarge
	}
	return t.write(ctx, bytes.Clone(value), true)
}

func (t *tx) Delete(ctx context.Context) error { return t.write(ctx, nil, false) }

// write seals value at the next version and writes it in one autocommit
// UPDATE that matches only while this lease is held and unexpired.
func (t *tx) write(ctx context.Context, value []byte, put bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return errors.New("sqlstore: Tx used after its Update returned")
	}
	if err := t.settle(ctx); err != nil {
		return err
	}
	next := t.version + 1
	var sealed any
	keyID := ""
	if put {
		if value == nil {
			value = []byte{}
		}
		var b []byte
		keyID, b = t.s.seal.seal(t.s.table, t.hash, next, value)
		sealed = b
	}
	start := time.Now()
	res, err := t.s.db.ExecContext(ctx, t.s.q.put, t.hash, t.owner, t.s.ttl.Milliseconds(), sealed, keyID, next, t.version)
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	if err != nil {
		if errors.Is(context.Cause(ctx), errLeaseLost) {
			return errLeaseLost
		}
		// The statement may have committed with its acknowledgement lost:
		// read the row back under the lease before anything else.
		t.unsure = &unsureWrite{version: next, value: value, put: put, start: start}
		if serr := t.settle(ctx); serr != nil {
			return errors.Join(t.s.dbErr("write", err), serr)
		}
		if t.version == next {
			return nil // it committed: only the acknowledgement was lost
		}
		return t.s.dbErr("write", err)
	}
	if n != 1 {
		t.cancel(errLeaseLost)
		return errLeaseLost
	}
	t.landed(next, value, put, start)
	return nil
}

// landed records a write of version next as this holder's.
func (t *tx) landed(next int64, value []byte, put bool, start time.Time) {
	t.s.seen.set(t.hash, next) // what this holder wrote is the newest, even over a rollback
	t.version, t.deadline, t.opened, t.openErr, t.sealed = next, start.Add(t.s.ttl), true, nil, nil
	t.value = nil
	if put {
		t.value = value
	}
}

// settle resolves a write whose outcome is unknown, if any, by reading
// the row back: at the written version and still this holder's, it
// landed; at the version before, it did not; anything else means the
// lease is lost. While the row cannot be read, every use of the Tx fails
// with an error matching tokenstore.ErrUnavailable. Called with t.mu held.
func (t *tx) settle(ctx context.Context) error {
	u := t.unsure
	if u == nil {
		return nil
	}
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.s.ttl/3)
	defer cancel()
	var version int64
	var owner string
	if err := t.s.db.QueryRowContext(c, t.s.q.readBack, t.hash).Scan(&version, &owner); err != nil {
		return t.s.dbErr("reading back a write whose outcome is unknown", err)
	}
	t.unsure = nil
	switch {
	case owner != t.owner:
		t.cancel(errLeaseLost)
		return errLeaseLost
	case version == u.version:
		t.landed(u.version, u.value, u.put, u.start)
	case version != t.version:
		t.cancel(errLeaseLost)
		return errLeaseLost
	}
	return nil
}

// release ends the lease (even when ctx has ended) and drops a row left
// without a record.
func (t *tx) release(ctx context.Context) error {
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(5*time.Second, t.s.ttl))
	defer cancel()
	if _, err := t.s.db.ExecContext(c, t.s.q.release, t.hash, t.owner); err != nil {
		return fmt.Errorf("sqlstore: releasing the lease (it lapses by itself): %w", err)
	}
	if t.opened && t.value == nil && t.openErr == nil || !t.opened && t.sealed == nil {
		// Best effort, and only if still empty and unleased: an empty row is harmless.
		t.s.db.ExecContext(c, t.s.q.dropEmpty, t.hash)
	}
	return nil
}

// Reseal moves every record sealed under another key to the first key,
// each in its own lease, and returns how many it moved. Records that do
// not open are left as they are and reported (joined *OpenError values);
// it goes on with the others. Run it after putting a new key first; when it
// returns no error, the old keys can be dropped. Safe for concurrent use.
func (s *Store) Reseal(ctx context.Context) (int, error) {
	if err := s.ready(); err != nil {
		return 0, err
	}
	first := s.seal.ids[0]
	var errs []error
	moved, after := 0, ""
	for {
		rows, err := s.db.QueryContext(ctx, s.q.listOld, first, after)
		if err != nil {
			return moved, s.dbErr("reseal", err)
		}
		var hashes []string
		for rows.Next() {
			var h string
			if err := rows.Scan(&h); err != nil {
				rows.Close()
				return moved, s.dbErr("reseal", err)
			}
			hashes = append(hashes, h)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return moved, s.dbErr("reseal", err)
		}
		if len(hashes) == 0 {
			return moved, errors.Join(errs...)
		}
		for _, h := range hashes {
			after = h
			err := s.update(ctx, h, func(ctx context.Context, t tokenstore.Tx) error {
				tt := t.(*tx)
				if tt.keyID == first {
					return nil
				}
				v, err := t.Get(ctx)
				if errors.Is(err, tokenstore.ErrNotFound) {
					return nil
				}
				if err != nil {
					return err
				}
				if err := t.Put(ctx, v); err != nil {
					return err
				}
				moved++
				return nil
			})
			if err != nil {
				errs = append(errs, err)
				if ctx.Err() != nil {
					return moved, errors.Join(errs...)
				}
			}
		}
	}
}

// Format prints the Store under every fmt verb as its table name, never a
// key or a record.
func (s *Store) Format(f fmt.State, verb rune) {
	if s == nil {
		io.WriteString(f, "sqlstore.Store{}")
		return
	}
	io.WriteString(f, "sqlstore.Store{table:"+s.table+"}")
}

package vault_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
)

// errCut is what a cut-off connection answers.
var errCut = errors.New("faultydb: connection to the database cut")

// faultyDB is a database/sql connector around a real driver whose
// connections all fail while down is set, as for a replica cut off from
// the database by the network: nothing it sends arrives. Its connections
// are dropped from the pool while down, so none survives the cut.
type faultyDB struct {
	drv  driver.Driver
	dsn  string
	down atomic.Bool
	// loseAck, while above zero, makes that many record writes (the
	// vault's UPDATE ... SET sealed) run and commit, then answer errCut:
	// a write whose acknowledgement was lost.
	loseAck atomic.Int32
}

// openFaulty opens b's database through a faultyDB.
func openFaulty(t testing.TB, b *backend) (*sql.DB, *faultyDB) {
	t.Helper()
	probe, err := sql.Open(b.driver, b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	f := &faultyDB{drv: probe.Driver(), dsn: b.dsn}
	probe.Close()
	db := sql.OpenDB(f)
	t.Cleanup(func() { db.Close() })
	return db, f
}

func (f *faultyDB) Connect(ctx context.Context) (driver.Conn, error) {
	if f.down.Load() {
		return nil, errCut
	}
	c, err := f.drv.Open(f.dsn)
	if err != nil {
		return nil, err
	}
	return &faultyConn{c, f}, nil
}

func (f *faultyDB) Driver() driver.Driver { return f.drv }

type faultyConn struct {
	driver.Conn
	f *faultyDB
}

func (c *faultyConn) Prepare(q string) (driver.Stmt, error) {
	if c.f.down.Load() {
		return nil, errCut
	}
	return c.Conn.Prepare(q)
}

func (c *faultyConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.f.down.Load() {
		return nil, errCut
	}
	// Both drivers used here (pgx, modernc sqlite) implement BeginTx.
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *faultyConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	if c.f.down.Load() {
		return nil, errCut
	}
	res, err := c.Conn.(driver.ExecerContext).ExecContext(ctx, q, args)
	if err == nil && strings.Contains(q, "SET sealed") && c.f.loseAck.Add(-1) >= 0 {
		return nil, errCut
	}
	return res, err
}

func (c *faultyConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	if c.f.down.Load() {
		return nil, errCut
	}
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, q, args)
}

func (c *faultyConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func (c *faultyConn) ResetSession(ctx context.Context) error {
	if c.f.down.Load() {
		return driver.ErrBadConn
	}
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *faultyConn) IsValid() bool {
	if c.f.down.Load() {
		return false
	}
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"

	"golang.org/x/oauth2"
)

// PoolConfig configures NewPool. Each field documents its zero value.
// NewPool copies it.
type PoolConfig struct {
	// New returns the Source for the user whose store key is key, resumed
	// from the store (oauthclient's Client.TokenSource with a nil login;
	// Client.UserPool sets it). The Pool calls it at most once per key at
	// a time, concurrently for different keys. Required.
	New func(ctx context.Context, key string) (*Source, error)
	// End, if not nil, ends a user's session at the server and in the
	// store (Logout: revoke, then delete the record); Pool.End calls it
	// after dropping the user's Source. nil means Pool.End only drops it.
	End func(ctx context.Context, key string) error
	// MaxSources bounds how many Sources the pool keeps; past it, the
	// least recently used of a sample of 8 is dropped (its access token is
	// forgotten; the record stays in the store, and the user's next call
	// resumes from it). Zero means 10,000.
	MaxSources int
}

// Pool keeps one Source per user for a server with many users, bounded by
// MaxSources, so memory stays flat however many users come and go. Access
// tokens live only in the pooled Sources' memory; refresh tokens only in
// the Store behind them. A Pool is safe for concurrent use and must not be
// copied. For a pooled user with a valid access token, Token takes a read
// lock and does not allocate.
//
// The zero value (and a nil *Pool) holds nothing and answers errors
// matching ErrConfig; use NewPool.
type Pool struct {
	cfg PoolConfig
	// epoch counts the Sources created or added: an entry's used is the
	// epoch of its last use, so eviction prefers entries unused for the
	// most creations. Reading it on the hot path writes nothing shared.
	epoch atomic.Int64

	mu       sync.RWMutex
	m        map[string]*poolEntry
	creating map[string]*poolCreate
	drained  bool
	closing  sync.WaitGroup // evicted Sources being closed
}

type poolEntry struct {
	src  *Source
	used atomic.Int64
}

type poolCreate struct {
	done chan struct{}
	e    *poolEntry
	err  error
}

// NewPool returns an empty Pool. It does no I/O; errors match ErrConfig.
func NewPool(cfg PoolConfig) (*Pool, error) {
	if cfg.New == nil {
		return nil, cfgerr.New("tokenstore", "PoolConfig.New is required")
	}
	if cfg.MaxSources < 0 {
		return nil, cfgerr.New("tokenstore", "PoolConfig.MaxSources is negative")
	}
	if cfg.MaxSources == 0 {
		cfg.MaxSources = 10000
	}
	return &Pool{cfg: cfg, m: make(map[string]*poolEntry), creating: make(map[string]*poolCreate)}, nil
}

func (p *Pool) ready() error {
	if p == nil || p.cfg.New == nil {
		return cfgerr.New("oauthclient", "UserPool not made by Client.UserPool")
	}
	return nil
}

// Token returns a valid access token for the user with store key key,
// creating the user's Source on first use. Errors are the Source's
// (ErrLoginRequired when the user must log in again, *TemporaryError) or
// New's.
func (p *Pool) Token(ctx context.Context, key string) (*oauth2.Token, error) {
	src, err := p.Source(ctx, key)
	if err != nil {
		return nil, err
	}
	return src.TokenContext(ctx)
}

// Source returns the pooled Source for key, creating it with New if needed
// (no token request: the first refresh happens when a token is needed).
// Pass it to apiclient.New for one request or a few; do not
// keep it, since the pool may drop it.
func (p *Pool) Source(ctx context.Context, key string) (*Source, error) {
	if err := p.ready(); err != nil {
		return nil, err
	}
	p.mu.RLock()
	e, drained := p.m[key], p.drained
	p.mu.RUnlock()
	if drained {
		return nil, fmt.Errorf("tokenstore: Pool: %w", ErrClosed)
	}
	if e == nil {
		var err error
		if e, err = p.create(ctx, key); err != nil {
			return nil, err
		}
	}
	if now := p.epoch.Load(); e.used.Load() != now {
		e.used.Store(now)
	}
	return e.src, nil
}

func (p *Pool) create(ctx context.Context, key string) (*poolEntry, error) {
	p.mu.Lock()
	if e := p.m[key]; e != nil {
		p.mu.Unlock()
		return e, nil
	}
	if c := p.creating[key]; c != nil {
		p.mu.Unlock()
		select {
		case <-c.done:
			return c.e, c.err
		case <-ctx.Done():
			return nil, fmt.Errorf("tokenstore: waiting for a pooled source: %w", context.Cause(ctx))
		}
	}
	c := &poolCreate{done: make(chan struct{})}
	p.creating[key] = c
	p.mu.Unlock()

	src, err := p.cfg.New(ctx, key)
	if err == nil && src == nil {
		err = cfgerr.New("tokenstore", "PoolConfig.New returned no Source")
	}
	p.mu.Lock()
	delete(p.creating, key)
	if err == nil && p.drained {
		err = fmt.Errorf("tokenstore: Pool: %w", ErrClosed)
		p.closeLocked(src)
	}
	if err == nil {
		if e := p.m[key]; e != nil { // Added meanwhile (a login): keep that one
			c.e = e
		} else {
			c.e = p.insertLocked(key, src)
		}
	}
	c.err = err
	p.mu.Unlock()
	close(c.done)
	return c.e, err
}

// Add pools src as the Source of the user with store key key, replacing
// any Source pooled for key: use it after a login with the Source that
// oauthclient's Client.TokenSource returned for the login (same Store and
// key), so the login's access token is served without a refresh. A nil
// src or a zero Pool does nothing.
func (p *Pool) Add(key string, src *Source) {
	if p.ready() != nil || src == nil {
		return
	}
	p.mu.Lock()
	if p.drained {
		p.closeLocked(src)
	} else {
		p.insertLocked(key, src)
	}
	p.mu.Unlock()
}

// insertLocked stores a new entry for key and evicts down to the bound.
func (p *Pool) insertLocked(key string, src *Source) *poolEntry {
	e := &poolEntry{src: src}
	e.used.Store(p.epoch.Add(1))
	if old := p.m[key]; old != nil && old.src != src {
		p.closeLocked(old.src)
	}
	p.m[key] = e
	p.evictLocked(key)
	return e
}

// evictLocked drops sampled least-recently-used entries until the pool is
// within its bound; keep is never dropped.
func (p *Pool) evictLocked(keep string) {
	for len(p.m) > p.cfg.MaxSources {
		victim, oldest, n := "", int64(0), 0
		for k, e := range p.m { // map iteration starts at a random place
			if k == keep {
				continue
			}
			if u := e.used.Load(); victim == "" || u < oldest {
				victim, oldest = k, u
			}
			if n++; n == 8 {
				break
			}
		}
		if victim == "" {
			return
		}
		p.closeLocked(p.m[victim].src)
		delete(p.m, victim)
	}
}

// evictCloseTimeout bounds the background Close of an evicted Source.
const evictCloseTimeout = 60 * time.Second

// closeLocked settles a Source the pool lets go of (eviction, replacement
// by Add), in the background: its refresh in flight ends and a rotation it
// could not write is flushed (until then the process-wide record of
// unsaved rotations keeps it for the user's next Source). It is not
// closed: a request may still hold it. Drain waits for these.
func (p *Pool) closeLocked(src *Source) {
	p.closing.Add(1)
	go func() {
		defer p.closing.Done()
		ctx, cancel := context.WithTimeout(context.Background(), evictCloseTimeout)
		defer cancel()
		src.settle(ctx)
	}()
}

// Drain shuts the pool down for a deploy or a graceful exit: new calls get
// ErrClosed, and every pooled Source is closed (Source.Close: refreshes in
// flight finish, unsaved rotations are flushed, leases released), as are
// Sources evicted earlier and still closing. It waits until ctx ends and
// returns the joined errors of the Sources that could not finish. Safe for
// concurrent use; a second Drain waits again.
func (p *Pool) Drain(ctx context.Context) error {
	if err := p.ready(); err != nil {
		return err
	}
	p.mu.Lock()
	p.drained = true
	srcs := make([]*Source, 0, len(p.m))
	for k, e := range p.m {
		srcs = append(srcs, e.src)
		delete(p.m, k)
	}
	p.mu.Unlock()
	errs := make([]error, len(srcs))
	var wg sync.WaitGroup
	for i, src := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = src.Close(ctx)
		}()
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { p.closing.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("tokenstore: Drain: evicted sources still closing: %w", context.Cause(ctx)))
	}
	return errors.Join(errs...)
}

// Len returns how many Sources the pool holds (0 for the zero Pool).
func (p *Pool) Len() int {
	if p == nil {
		return 0
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.m)
}

// End ends the session of the user with store key key: it drops the
// user's Source (and with it the access token), calls PoolConfig.End
// (revoke and delete) if set, then drops any Source a concurrent call
// created meanwhile, and returns PoolConfig.End's error.
func (p *Pool) End(ctx context.Context, key string) error {
	if err := p.ready(); err != nil {
		return err
	}
	p.drop(key)
	var err error
	if p.cfg.End != nil {
		err = p.cfg.End(ctx, key)
	}
	p.drop(key)
	return err
}

func (p *Pool) drop(key string) {
	p.mu.Lock()
	delete(p.m, key)
	p.mu.Unlock()
}

// Format implements fmt.Formatter like String under every verb.
func (p *Pool) Format(f fmt.State, verb rune) { redacted(f, "tokenstore.Pool") }

package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"golang.org/x/oauth2"
)

// PoolConfig configures NewPool. Each field documents its zero value.
type PoolConfig struct {
	// New returns the Source for the user whose store key is key, resumed
	// from the store (oauthclient's Client.TokenSource with a nil login).
	// It is called at most once per key at a time; the Pool calls it
	// concurrently for different keys. Required.
	New func(ctx context.Context, key string) (*Source, error)
	// End, if not nil, ends a user's session at the server and in the
	// store (revoke, then delete the record); Pool.End calls it after
	// dropping the user's Source. nil means Pool.End only drops it.
	End func(ctx context.Context, key string) error
	// MaxSources bounds how many Sources the pool keeps; past it, the least
	// recently used of a sample of 8 is dropped (its access token is
	// forgotten; the refresh token stays in the store). Zero means 10,000.
	MaxSources int
}

// Pool keeps one Source per user for a server with many users, bounded by
// MaxSources, so memory stays flat however many users come and go. Access
// tokens live only in the pooled Sources' memory. A Pool is safe for
// concurrent use; Token for a pooled user with a valid access token takes
// a read lock and makes no allocation.
type Pool struct {
	cfg  PoolConfig
	tick atomic.Int64

	mu       sync.RWMutex
	m        map[string]*poolEntry
	creating map[string]*poolCreate
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

// NewPool returns an empty Pool. It does no I/O.
func NewPool(cfg PoolConfig) (*Pool, error) {
	if cfg.New == nil {
		return nil, errors.New("tokenstore: PoolConfig.New is required")
	}
	if cfg.MaxSources < 0 {
		return nil, errors.New("tokenstore: PoolConfig.MaxSources is negative")
	}
	if cfg.MaxSources == 0 {
		cfg.MaxSources = 10000
	}
	return &Pool{cfg: cfg, m: make(map[string]*poolEntry), creating: make(map[string]*poolCreate)}, nil
}

// Token returns a valid access token for the user with store key key,
// creating the user's Source on first use. Errors are the Source's
// (ErrLoginRequired when the user must log in again) or New's.
func (p *Pool) Token(ctx context.Context, key string) (*oauth2.Token, error) {
	src, err := p.Source(ctx, key)
	if err != nil {
		return nil, err
	}
	return src.TokenContext(ctx)
}

// Source returns the pooled Source for key, creating it with New if needed.
// Use it for oauthclient.NewAPIClient; keep it only for one request, since
// the pool may drop it.
func (p *Pool) Source(ctx context.Context, key string) (*Source, error) {
	p.mu.RLock()
	e := p.m[key]
	p.mu.RUnlock()
	if e == nil {
		var err error
		if e, err = p.create(ctx, key); err != nil {
			return nil, err
		}
	}
	e.used.Store(p.tick.Add(1))
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
			return nil, fmt.Errorf("tokenstore: waiting for a pooled source: %w", ctx.Err())
		}
	}
	c := &poolCreate{done: make(chan struct{})}
	p.creating[key] = c
	p.mu.Unlock()

	src, err := p.cfg.New(ctx, key)
	if err == nil && src == nil {
		err = errors.New("tokenstore: PoolConfig.New returned no Source")
	}
	p.mu.Lock()
	delete(p.creating, key)
	if err == nil {
		c.e = &poolEntry{src: src}
		p.m[key] = c.e
		p.evictLocked(key)
	}
	c.err = err
	p.mu.Unlock()
	close(c.done)
	return c.e, err
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
		delete(p.m, victim)
	}
}

// Len returns how many Sources the pool holds.
func (p *Pool) Len() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.m)
}

// End ends the session of the user with store key key: it drops the
// user's Source (and with it the access token), then calls PoolConfig.End
// (revoke and delete) if set, and returns its error.
func (p *Pool) End(ctx context.Context, key string) error {
	p.mu.Lock()
	delete(p.m, key)
	p.mu.Unlock()
	if p.cfg.End == nil {
		return nil
	}
	return p.cfg.End(ctx, key)
}

// String implements fmt.Stringer; it never shows a token or a key.
func (p *Pool) String() string { return "tokenstore.Pool{redacted}" }

// GoString implements fmt.GoStringer like String.
func (p *Pool) GoString() string { return p.String() }

// Format implements fmt.Formatter like String under every verb.
func (p *Pool) Format(f fmt.State, verb rune) { redacted(f, "tokenstore.Pool") }

// LogValue implements slog.LogValuer like String.
func (p *Pool) LogValue() slog.Value { return slog.StringValue(p.String()) }

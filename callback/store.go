package callback

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Store keeps pending flows on the server, as an alternative to sealed
// cookies (Config.Store). The data it holds are secrets of the flow (the
// PKCE verifier among them): keep them server-side only. Keys are opaque
// strings of at most 64 bytes, derived from both the state and a random
// value held in the browser's cookie, so a key cannot be guessed from a
// callback URL alone.
//
// Implementations must be safe for concurrent use. Replicas need a shared
// implementation (a database); [MemoryStore] serves one process.
type Store interface {
	// Put stores data under key until expires.
	Put(ctx context.Context, key string, data []byte, expires time.Time) error
	// Take atomically returns and removes the data under key, so a flow
	// can be taken once. A missing or expired entry is ErrNotFound.
	Take(ctx context.Context, key string) ([]byte, error)
}

// ErrNotFound is returned by Store.Take for a missing or expired key.
var ErrNotFound = errors.New("callback: pending flow not found")

// ErrStoreValue is returned by MemoryStore.Put for an oversized key or value.
var ErrStoreValue = errors.New("callback: store key or value too large")

// Bounds of MemoryStore.
const (
	// DefaultMaxEntries is MemoryStore's bound when MaxEntries is 0.
	DefaultMaxEntries = 10000
	maxStoreKey       = 64
	maxStoreValue     = 8 << 10
)

// MemoryStore is an in-memory [Store] for a single process. Its memory is
// bounded: at most MaxEntries flows of at most 8 KiB each. Expired entries
// are dropped as new ones arrive; when it is full, the oldest entry is
// evicted, so a flood of Start calls costs the flood's own oldest flows
// and cannot grow memory. The zero value is ready to use. A MemoryStore is
// safe for concurrent use and must not be copied after first use.
type MemoryStore struct {
	// MaxEntries bounds the number of pending flows. 0 means DefaultMaxEntries.
	MaxEntries int
	// Now is the clock. nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	byKey map[string]*list.Element
	order list.List // of *memEntry, oldest first
}

type memEntry struct {
	key     string
	data    []byte
	expires time.Time
}

var _ Store = (*MemoryStore)(nil)

func (m *MemoryStore) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// Put implements Store. It copies data.
func (m *MemoryStore) Put(ctx context.Context, key string, data []byte, expires time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if key == "" || len(key) > maxStoreKey || len(data) > maxStoreValue {
		return fmt.Errorf("%w (key %d bytes, value %d bytes)", ErrStoreValue, len(key), len(data))
	}
	max := m.MaxEntries
	if max <= 0 {
		max = DefaultMaxEntries
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byKey == nil {
		m.byKey = make(map[string]*list.Element)
	}
	if el, ok := m.byKey[key]; ok {
		m.remove(el)
	}
	// Drop expired entries from the old end, then make room.
	for el := m.order.Front(); el != nil; el = m.order.Front() {
		if now.Before(el.Value.(*memEntry).expires) && m.order.Len() < max {
			break
		}
		m.remove(el)
	}
	m.byKey[key] = m.order.PushBack(&memEntry{key: key, data: append([]byte(nil), data...), expires: expires})
	return nil
}

// Take implements Store.
func (m *MemoryStore) Take(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.byKey[key]
	if !ok {
		return nil, ErrNotFound
	}
	m.remove(el)
	e := el.Value.(*memEntry)
	if !now.Before(e.expires) {
		return nil, ErrNotFound
	}
	return e.data, nil
}

// Len returns the number of entries held, expired ones included until they
// are dropped.
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.order.Len()
}

func (m *MemoryStore) remove(el *list.Element) {
	delete(m.byKey, el.Value.(*memEntry).key)
	m.order.Remove(el)
}

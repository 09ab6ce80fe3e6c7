package callback

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// PendingStore keeps pending logins (the flows between Start and the
// callback) on the server, as an alternative to sealed cookies
// (Config.PendingStore). It is not a token store: what it holds lives at
// most 10 minutes. The data it holds are secrets of the flow (the PKCE
// verifier among them): keep them server-side only. Keys are opaque
// strings of at most 64 bytes, derived from both the state and a random
// value held in the browser's cookie, so a key cannot be guessed from a
// callback URL alone.
//
// Implementations must be safe for concurrent use. Replicas need a shared
// implementation (a database); [NewMemoryPendingStore] serves one process.
type PendingStore interface {
	// Put stores data under key until expires.
	Put(ctx context.Context, key string, data []byte, expires time.Time) error
	// Take atomically returns and removes the data under key, so a flow
	// can be taken once. A missing or expired entry returns nil data and
	// a nil error; the Handler then refuses the callback (ErrRefused).
	Take(ctx context.Context, key string) ([]byte, error)
}

// errStoreValue: the memory store's Put got an oversized key or value.
var errStoreValue = errors.New("callback: pending-login key or value too large for the memory store")

// Bounds of the memory store.
const (
	defaultMaxEntries = 10000
	maxStoreKey       = 64
	maxStoreValue     = 8 << 10
)

// NewMemoryPendingStore returns an in-memory [PendingStore] for a single
// process. Its memory is bounded: at most maxEntries pending logins (0
// means 10,000) of at most 8 KiB each. Expired entries are dropped as new
// ones arrive; when it is full, the oldest entry is evicted, so a flood of
// Start calls costs the flood's own oldest flows and cannot grow memory.
// The store is safe for concurrent use.
func NewMemoryPendingStore(maxEntries int) PendingStore {
	return &memoryPendingStore{max: maxEntries}
}

// memoryPendingStore is NewMemoryPendingStore's store.
type memoryPendingStore struct {
	max int              // 0 means defaultMaxEntries
	now func() time.Time // nil means time.Now

	mu    sync.Mutex
	byKey map[string]*list.Element
	order list.List // of *memEntry, oldest first
}

type memEntry struct {
	key     string
	data    []byte
	expires time.Time
}

func (m *memoryPendingStore) clock() time.Time {
	if m.now != nil {
		return m.now()
	}
	return time.Now()
}

// Put implements PendingStore. It copies data.
func (m *memoryPendingStore) Put(ctx context.Context, key string, data []byte, expires time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if key == "" || len(key) > maxStoreKey || len(data) > maxStoreValue {
		return fmt.Errorf("%w (key %d bytes, value %d bytes)", errStoreValue, len(key), len(data))
	}
	max := m.max
	if max <= 0 {
		max = defaultMaxEntries
	}
	now := m.clock()
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

// Take implements PendingStore.
func (m *memoryPendingStore) Take(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := m.clock()
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.byKey[key]
	if !ok {
		return nil, nil
	}
	m.remove(el)
	e := el.Value.(*memEntry)
	if !now.Before(e.expires) {
		return nil, nil
	}
	return e.data, nil
}

// len returns the number of entries held, expired ones included until they
// are dropped.
func (m *memoryPendingStore) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.order.Len()
}

func (m *memoryPendingStore) remove(el *list.Element) {
	delete(m.byKey, el.Value.(*memEntry).key)
	m.order.Remove(el)
}

package tokenstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/storelimit"
)

// memoryLockWait bounds how long Memory.Update waits for a key held by
// another transaction before it gives up with ErrLocked.
const memoryLockWait = 30 * time.Second

// Memory is a Store in process memory. It excludes with one lock per key,
// held for the length of Update; memory cannot span processes, so it
// serves one process only (tests, and token sources without a persistent store).
// Waiting for a key ends with ErrLocked when ctx ends or after
// 30 seconds. Values are copied in and out. The zero value is ready to
// use; Memory is safe for concurrent use and must not be copied after first
// use.
type Memory struct {
	mu    sync.Mutex
	m     map[string][]byte
	locks map[string]chan struct{}
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[key]
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(v), nil
}

// Update implements Store.
func (m *Memory) Update(ctx context.Context, key string, fn func(ctx context.Context, tx Tx) error) error {
	m.mu.Lock()
	if m.locks == nil {
		m.locks = make(map[string]chan struct{})
	}
	l, ok := m.locks[key]
	if !ok {
		l = make(chan struct{}, 1)
		m.locks[key] = l
	}
	m.mu.Unlock()
	t := time.NewTimer(memoryLockWait)
	select {
	case l <- struct{}{}:
		t.Stop()
	case <-ctx.Done():
		t.Stop()
		return fmt.Errorf("%w: %w", ErrLocked, context.Cause(ctx))
	case <-t.C:
		return ErrLocked
	}
	defer func() { <-l }()
	tx := &memoryTx{m: m, key: key}
	defer func() { tx.done = true }()
	return fn(ctx, tx)
}

type memoryTx struct {
	m    *Memory
	key  string
	done bool
}

var errTxDone = errors.New("tokenstore: transaction used after Update returned")

func (tx *memoryTx) Get(ctx context.Context) ([]byte, error) {
	if tx.done {
		return nil, errTxDone
	}
	return tx.m.Get(ctx, tx.key)
}

func (tx *memoryTx) Put(ctx context.Context, value []byte) error {
	if tx.done {
		return errTxDone
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(value) > storelimit.MaxValueSize {
		return ErrTooLarge
	}
	tx.m.mu.Lock()
	defer tx.m.mu.Unlock()
	if tx.m.m == nil {
		tx.m.m = make(map[string][]byte)
	}
	tx.m.m[tx.key] = bytes.Clone(value)
	return nil
}

func (tx *memoryTx) Delete(ctx context.Context) error {
	if tx.done {
		return errTxDone
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	tx.m.mu.Lock()
	defer tx.m.mu.Unlock()
	delete(tx.m.m, tx.key)
	return nil
}

// Format implements fmt.Formatter without revealing stored values.
func (m *Memory) Format(f fmt.State, verb rune) { redacted(f, "tokenstore.Memory") }

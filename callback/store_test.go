package callback

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a test clock that can be moved forward.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }
func (c *clock) reset()                  { c.offset.Store(0) }

// TestMemoryStore: single use, expiry, a bound that evicts the
// oldest entry, expired entries dropped as new ones arrive, oversized keys
// and values refused, and data copied.
func TestMemoryStore(t *testing.T) {
	ctx := t.Context()
	clk := &clock{}
	m := &memoryPendingStore{max: 3, now: clk.Now}
	exp := clk.Now().Add(time.Minute)

	if err := m.Put(ctx, "a", []byte("1"), exp); err != nil {
		t.Fatal(err)
	}
	got, err := m.Take(ctx, "a")
	if err != nil || string(got) != "1" {
		t.Fatalf("Take = %q, %v", got, err)
	}
	if got, err := m.Take(ctx, "a"); got != nil || err != nil {
		t.Errorf("second Take = %q, %v, want nothing (single use)", got, err)
	}

	// Expiry.
	_ = m.Put(ctx, "b", []byte("2"), exp)
	clk.advance(2 * time.Minute)
	if got, err := m.Take(ctx, "b"); got != nil || err != nil {
		t.Errorf("Take after expiry = %q, %v, want nothing", got, err)
	}
	clk.reset()

	// Bounded: a flood keeps at most MaxEntries and evicts the oldest.
	for i := range 100 {
		if err := m.Put(ctx, fmt.Sprint("k", i), []byte("v"), exp); err != nil {
			t.Fatal(err)
		}
		if m.len() > 3 {
			t.Fatalf("store grew to %d entries", m.len())
		}
	}
	if got, err := m.Take(ctx, "k0"); got != nil || err != nil {
		t.Error("oldest entry survived the flood")
	}
	if got, err := m.Take(ctx, "k99"); got == nil || err != nil {
		t.Errorf("newest entry lost: %v", err)
	}

	// Expired entries are dropped when new ones arrive.
	m2 := &memoryPendingStore{now: clk.Now}
	for i := range 50 {
		_ = m2.Put(ctx, fmt.Sprint("e", i), []byte("v"), clk.Now().Add(time.Second))
	}
	clk.advance(time.Hour)
	_ = m2.Put(ctx, "fresh", []byte("v"), clk.Now().Add(time.Minute))
	if m2.len() != 1 {
		t.Errorf("expired entries kept: Len = %d", m2.len())
	}
	clk.reset()

	// Oversized keys and values are refused.
	if err := m.Put(ctx, strings.Repeat("k", 64+1), nil, exp); !errors.Is(err, errStoreValue) {
		t.Errorf("long key: %v", err)
	}
	if err := m.Put(ctx, "k", make([]byte, (8<<10)+1), exp); !errors.Is(err, errStoreValue) {
		t.Errorf("large value: %v", err)
	}
	// Put copies the data.
	buf := []byte("orig")
	_ = m.Put(ctx, "copy", buf, exp)
	buf[0] = 'X'
	if got, _ := m.Take(ctx, "copy"); string(got) != "orig" {
		t.Errorf("store aliases the caller's slice: %q", got)
	}
}

// TestMemoryStoreConcurrent: concurrent Puts and Takes stay within the
// bound, and each entry is taken at most once (run with -race).
func TestMemoryStoreConcurrent(t *testing.T) {
	ctx := t.Context()
	m := NewMemoryPendingStore(64).(*memoryPendingStore)
	exp := time.Now().Add(time.Minute)
	var wg sync.WaitGroup
	var mu sync.Mutex
	taken := map[string]int{}
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				k := fmt.Sprint(g, "-", i)
				if err := m.Put(ctx, k, []byte(k), exp); err != nil {
					t.Error(err)
					return
				}
				for _, kk := range []string{k, fmt.Sprint((g+1)%8, "-", i)} {
					if v, err := m.Take(ctx, kk); err == nil && v != nil {
						if string(v) != kk {
							t.Errorf("Take(%s) = %s", kk, v)
						}
						mu.Lock()
						taken[kk]++
						mu.Unlock()
					}
				}
				if m.len() > 64 {
					t.Errorf("Len %d above bound", m.len())
				}
			}
		})
	}
	wg.Wait()
	for k, n := range taken {
		if n != 1 {
			t.Fatalf("%s taken %d times", k, n)
		}
	}
}

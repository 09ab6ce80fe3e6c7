package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe"
	"github.com/oauthsafe/oauthsafe/tokenstore"

	"golang.org/x/oauth2"
)

// poolStore is the store behind the pooled test users (they never refresh).
var poolStore = &tokenstore.Memory{}

// poolUser returns a Source for key holding a valid access token, as after
// a resume; its refresh fails (no token endpoint here).
func poolUser(_ context.Context, key string) (*Source, error) {
	return NewSource(SourceConfig{Store: poolStore, Key: key, Fetch: func(context.Context, *Refresh) (*Result, error) {
		return nil, errors.New("no refresh in this test")
	}}, &oauth2.Token{AccessToken: "access-token-of-" + key + "-0123456789abcdef0123456789abcdef",
		TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)})
}

func heapAfterGC() uint64 {
	var ms runtime.MemStats
	for range 2 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestPoolBounded: 100,000 users through a pool of 10,000 keep the heap
// flat. The bound: the heap after 100,000 users is at most 2 MiB above the
// heap after the first 10,000 (the pool full), and the pool's whole cost
// stays under 8 MiB (about 800 bytes per pooled user, access token and
// Source included). Measured with runtime.ReadMemStats after GC.
func TestPoolBounded(t *testing.T) {
	const max, users = 10000, 100000
	p, err := NewPool(PoolConfig{New: poolUser, MaxSources: max})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	base := heapAfterGC()
	var full uint64
	for i := range users {
		if _, err := p.Token(ctx, "user-"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
		if n := p.Len(); n > max {
			t.Fatalf("pool holds %d > %d", n, max)
		}
		if i == max-1 {
			full = heapAfterGC()
		}
	}
	end := heapAfterGC()
	t.Logf("heap: base %d KiB, pool full %d KiB, after %d users %d KiB", base>>10, full>>10, users, end>>10)
	if end > full+2<<20 {
		t.Errorf("heap grew by %d KiB from 10,000 to 100,000 users", (end-full)>>10)
	}
	if end > base+8<<20 {
		t.Errorf("pool costs %d KiB, over 8 MiB", (end-base)>>10)
	}
	runtime.KeepAlive(p)
}

func TestPoolRecentStays(t *testing.T) {
	p, _ := NewPool(PoolConfig{New: poolUser, MaxSources: 100})
	ctx := context.Background()
	hot, _ := p.Source(ctx, "hot")
	for i := range 10000 {
		p.Token(ctx, "u"+strconv.Itoa(i))
		if i%10 == 0 {
			p.Token(ctx, "hot")
		}
	}
	if again, _ := p.Source(ctx, "hot"); again != hot {
		t.Fatal("a user in constant use was evicted")
	}
}

func TestPoolCreatesOncePerKey(t *testing.T) {
	var calls atomic.Int32
	p, _ := NewPool(PoolConfig{New: func(ctx context.Context, key string) (*Source, error) {
		calls.Add(1)
		time.Sleep(10 * time.Millisecond)
		return poolUser(ctx, key)
	}})
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() { defer wg.Done(); p.Token(context.Background(), "k") }()
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("New called %d times", calls.Load())
	}
}

func TestPoolEnd(t *testing.T) {
	var ended []string
	boom := errors.New("revocation failed")
	p, _ := NewPool(PoolConfig{New: poolUser, End: func(ctx context.Context, key string) error {
		ended = append(ended, key)
		return boom
	}})
	ctx := context.Background()
	first, _ := p.Source(ctx, "k")
	if err := p.End(ctx, "k"); !errors.Is(err, boom) {
		t.Fatalf("End = %v", err)
	}
	if p.Len() != 0 || len(ended) != 1 {
		t.Fatalf("after End: len %d, ended %v", p.Len(), ended)
	}
	if again, _ := p.Source(ctx, "k"); again == first {
		t.Fatal("End kept the Source (and its access token)")
	}
	newErr := errors.New("no such user")
	q, _ := NewPool(PoolConfig{New: func(context.Context, string) (*Source, error) { return nil, newErr }})
	if _, err := q.Token(ctx, "x"); !errors.Is(err, newErr) || q.Len() != 0 {
		t.Fatalf("Token with a failing New = %v, len %d", err, q.Len())
	}
	for _, verb := range []string{"%v", "%+v", "%#v"} {
		if s := fmt.Sprintf(verb, p); s != "tokenstore.Pool{redacted}" {
			t.Fatalf("%s: %s", verb, s)
		}
	}
}

// BenchmarkPoolHot: a pooled user with a valid access token, among 10,000
// pooled users. Compare with BenchmarkXOAuth2ReuseTokenSource.
func BenchmarkPoolHot(b *testing.B) {
	p, _ := NewPool(PoolConfig{New: poolUser})
	ctx := context.Background()
	for i := range 10000 {
		p.Token(ctx, "user-"+strconv.Itoa(i))
	}
	key := "user-4242"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Token(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPoolAdd: a login's Source added to the pool is the one served (its
// access token, no refresh), replacing a resumed one; a resume that
// finishes after the Add does not replace it.
func TestPoolAdd(t *testing.T) {
	ctx := context.Background()
	release := make(chan struct{})
	p, _ := NewPool(PoolConfig{New: func(ctx context.Context, key string) (*Source, error) {
		if key == "slow" {
			<-release
		}
		return poolUser(ctx, key)
	}})
	resumed, _ := p.Source(ctx, "k")
	login, _ := poolUser(ctx, "k")
	p.Add("k", login)
	if got, _ := p.Source(ctx, "k"); got != login || got == resumed {
		t.Fatal("Add did not replace the pooled Source")
	}
	done := make(chan *Source)
	go func() { s, _ := p.Source(ctx, "slow"); done <- s }()
	for {
		p.mu.RLock()
		n := len(p.creating)
		p.mu.RUnlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	slowLogin, _ := poolUser(ctx, "slow")
	p.Add("slow", slowLogin)
	close(release)
	if got := <-done; got != slowLogin {
		t.Fatal("a resume finishing after Add replaced the login's Source")
	}
	if got, _ := p.Source(ctx, "slow"); got != slowLogin {
		t.Fatal("the pool lost the login's Source")
	}
	p.Add("k", nil) // ignored
	if got, _ := p.Source(ctx, "k"); got != login {
		t.Fatal("Add(nil) changed the pool")
	}
}

// TestPoolEndDropsConcurrentResume: a Source created for the key while End
// runs (a request racing the logout) is dropped too.
func TestPoolEndDropsConcurrentResume(t *testing.T) {
	ctx := context.Background()
	var p *Pool
	p, _ = NewPool(PoolConfig{New: poolUser, End: func(ctx context.Context, key string) error {
		p.Source(ctx, key) // a request during the logout
		return nil
	}})
	p.Source(ctx, "k")
	if err := p.End(ctx, "k"); err != nil || p.Len() != 0 {
		t.Fatalf("End = %v, len %d", err, p.Len())
	}
}

// TestPoolZeroValue: the zero and nil Pool answer ErrConfig, never panic;
// NewPool refuses a config without New or with a negative bound.
func TestPoolZeroValue(t *testing.T) {
	ctx := context.Background()
	for name, p := range map[string]*Pool{"zero": {}, "nil": nil} {
		t.Run(name, func(t *testing.T) {
			if _, err := p.Source(ctx, "k"); !errors.Is(err, oauthsafe.ErrConfig) {
				t.Errorf("Source = %v", err)
			}
			if _, err := p.Token(ctx, "k"); !errors.Is(err, oauthsafe.ErrConfig) {
				t.Errorf("Token = %v", err)
			}
			if err := p.End(ctx, "k"); !errors.Is(err, oauthsafe.ErrConfig) {
				t.Errorf("End = %v", err)
			}
			src, _ := poolUser(ctx, "k")
			p.Add("k", src)
			if p.Len() != 0 {
				t.Error("Len of a zero pool")
			}
			_ = fmt.Sprintf("%v %+v %#v %s", p, p, p, p)
		})
	}
	for _, cfg := range []PoolConfig{{}, {New: poolUser, MaxSources: -1}} {
		if _, err := NewPool(cfg); !errors.Is(err, oauthsafe.ErrConfig) {
			t.Errorf("NewPool(%+v) = %v", cfg, err)
		}
	}
}

// TestPoolEvictedSourceStaysUsable: a Source the pool evicts (or replaces
// with Add) is settled in the background (its unsaved rotations flushed),
// not closed: a request that still holds it can refresh. Drain closes.
func TestPoolEvictedSourceStaysUsable(t *testing.T) {
	ctx := context.Background()
	st := &tokenstore.Memory{}
	var fetches atomic.Int32
	newUser := func(_ context.Context, key string) (*Source, error) {
		return NewSource(SourceConfig{Store: st, Key: key, Fetch: func(context.Context, *Refresh) (*Result, error) {
			n := fetches.Add(1)
			return &Result{Token: &oauth2.Token{AccessToken: fmt.Sprintf("at-%d", n), Expiry: time.Now().Add(time.Hour)}}, nil
		}}, nil)
	}
	for _, k := range []string{"a", "b"} {
		if err := SaveRecord(ctx, st, k, &Record{RefreshToken: "rt-" + k, Issuer: "i", ClientID: "c"}); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := NewPool(PoolConfig{New: newUser, MaxSources: 1})
	held, err := p.Source(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Source(ctx, "b"); err != nil { // evicts a
		t.Fatal(err)
	}
	if p.Len() != 1 {
		t.Fatalf("pool holds %d", p.Len())
	}
	if _, err := held.Token(); err != nil {
		t.Fatalf("a request holding the evicted Source: %v", err)
	}
	if err := p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Token(ctx, "b"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Token after Drain = %v, want ErrClosed", err)
	}
}

package callback_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/oauthtest"
)

func TestMemoryStore(t *testing.T) {
	ctx := t.Context()
	clk := &clock{}
	m := &callback.MemoryStore{MaxEntries: 3, Now: clk.Now}
	exp := clk.Now().Add(time.Minute)

	if err := m.Put(ctx, "a", []byte("1"), exp); err != nil {
		t.Fatal(err)
	}
	got, err := m.Take(ctx, "a")
	if err != nil || string(got) != "1" {
		t.Fatalf("Take = %q, %v", got, err)
	}
	if _, err := m.Take(ctx, "a"); !errors.Is(err, callback.ErrNotFound) {
		t.Errorf("second Take = %v, want ErrNotFound (single use)", err)
	}

	// Expiry.
	_ = m.Put(ctx, "b", []byte("2"), exp)
	clk.advance(2 * time.Minute)
	if _, err := m.Take(ctx, "b"); !errors.Is(err, callback.ErrNotFound) {
		t.Errorf("Take after expiry = %v, want ErrNotFound", err)
	}
	clk.reset()

	// Bounded: a flood keeps at most MaxEntries and evicts the oldest.
	for i := range 100 {
		if err := m.Put(ctx, fmt.Sprint("k", i), []byte("v"), exp); err != nil {
			t.Fatal(err)
		}
		if m.Len() > 3 {
			t.Fatalf("store grew to %d entries", m.Len())
		}
	}
	if _, err := m.Take(ctx, "k0"); !errors.Is(err, callback.ErrNotFound) {
		t.Error("oldest entry survived the flood")
	}
	if _, err := m.Take(ctx, "k99"); err != nil {
		t.Errorf("newest entry lost: %v", err)
	}

	// Expired entries are dropped when new ones arrive.
	m2 := &callback.MemoryStore{Now: clk.Now}
	for i := range 50 {
		_ = m2.Put(ctx, fmt.Sprint("e", i), []byte("v"), clk.Now().Add(time.Second))
	}
	clk.advance(time.Hour)
	_ = m2.Put(ctx, "fresh", []byte("v"), clk.Now().Add(time.Minute))
	if m2.Len() != 1 {
		t.Errorf("expired entries kept: Len = %d", m2.Len())
	}
	clk.reset()

	// Oversized keys and values are refused.
	if err := m.Put(ctx, strings.Repeat("k", 64+1), nil, exp); !errors.Is(err, callback.ErrStoreValue) {
		t.Errorf("long key: %v", err)
	}
	if err := m.Put(ctx, "k", make([]byte, (8<<10)+1), exp); !errors.Is(err, callback.ErrStoreValue) {
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
	m := &callback.MemoryStore{MaxEntries: 64}
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
					if v, err := m.Take(ctx, kk); err == nil {
						if string(v) != kk {
							t.Errorf("Take(%s) = %s", kk, v)
						}
						mu.Lock()
						taken[kk]++
						mu.Unlock()
					}
				}
				if m.Len() > 64 {
					t.Errorf("Len %d above bound", m.Len())
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

// TestStoreMode runs the Handler with a MemoryStore against the real
// server: the cookie holds only a random handle, a flow completes, a
// forged error or a cookie-less callback consumes nothing, and a replay
// even with the old cookie makes no token request.
func TestStoreMode(t *testing.T) {
	srv := startServer(t)
	client := newClient(t, srv, redirectURL, nil)
	store := &callback.MemoryStore{}
	rec := &logins{}
	h, err := callback.New(callback.Config{Client: client, Store: store, OnLogin: rec.onLogin, OnError: rec.onError})
	if err != nil {
		t.Fatal(err)
	}
	tp := tokenPath(t, srv)
	f := login(t, srv, startFlow(t, h, srv, callback.StartOptions{ReturnTo: "/after"}))
	if len(f.cookie.Value) != 43 || store.Len() != 1 {
		t.Fatalf("store mode cookie is not a 256-bit handle (len %d) or store has %d entries", len(f.cookie.Value), store.Len())
	}
	before := srv.Count(tp)
	for name, r := range map[string]struct {
		target string
		cookie bool
	}{
		"forged error":       {f.withQuery("error=access_denied&state=" + strings.Repeat("B", 43)), true},
		"no cookie":          {f.callback.String(), false},
		"wrong cookie":       {f.callback.String(), true},
		"forged error+state": {f.withQuery("error=access_denied&state=" + f.state), false},
	} {
		req := get(r.target)
		if r.cookie {
			req = get(r.target, f.cookie)
		}
		if name == "wrong cookie" {
			req = get(r.target)
			req.AddCookie(&http.Cookie{Name: f.cookie.Name, Value: strings.Repeat("C", 43)})
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		checkHeaders(t, w.Header())
		if w.Code != 400 || !errors.Is(rec.lastErr(), callback.ErrNoFlow) {
			t.Errorf("%s: status %d err %v", name, w.Code, rec.lastErr())
		}
		if store.Len() != 1 {
			t.Errorf("%s consumed the stored flow", name)
		}
	}
	if srv.Count(tp) != before {
		t.Error("a refused callback reached the token endpoint")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, get(f.callback.String(), f.cookie))
	if w.Code != 303 || w.Header().Get("Location") != "/after" || store.Len() != 0 || !deletes(w.Result(), f.cookie.Name) {
		t.Fatalf("completion: %d %q store %d err %v", w.Code, w.Header().Get("Location"), store.Len(), rec.lastErr())
	}
	if rec.subjects[0] != oauthtest.Subject(oauthtest.UserAlice) {
		t.Errorf("subject %q", rec.subjects[0])
	}
	before = srv.Count(tp)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, get(f.callback.String(), f.cookie)) // replay with a stolen cookie
	if w.Code != 400 || !errors.Is(rec.lastErr(), callback.ErrNoFlow) || srv.Count(tp) != before {
		t.Errorf("replay: status %d err %v token requests %d", w.Code, rec.lastErr(), srv.Count(tp)-before)
	}
}

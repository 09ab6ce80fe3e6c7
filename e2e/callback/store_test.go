package callback_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/oauthtest"
)

// TestStoreMode runs the Handler with a memory PendingStore against the real
// server: the cookie holds only a random handle, a flow completes, a
// forged error or a cookie-less callback consumes nothing, and a replay
// even with the old cookie makes no token request.
func TestStoreMode(t *testing.T) {
	srv := startServer(t)
	client := newClient(t, srv, redirectURL, nil)
	store := &countedStore{PendingStore: callback.NewMemoryPendingStore(0)}
	rec := &logins{}
	h, err := callback.New(callback.Config{Client: client, PendingStore: store, OnLogin: rec.onLogin, OnError: rec.onError})
	if err != nil {
		t.Fatal(err)
	}
	tp := tokenPath(t, srv)
	f := login(t, srv, startFlow(t, h, srv, callback.LoginOptions{ReturnTo: "/after"}))
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
		if w.Code != 400 || !errors.Is(rec.lastErr(), callback.ErrRefused) || !strings.Contains(rec.lastErr().Error(), "no pending login matches this state") {
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
	if w.Code != 400 || !errors.Is(rec.lastErr(), callback.ErrRefused) || !strings.Contains(rec.lastErr().Error(), "no pending login matches this state") || srv.Count(tp) != before {
		t.Errorf("replay: status %d err %v token requests %d", w.Code, rec.lastErr(), srv.Count(tp)-before)
	}
}

// countedStore is a PendingStore that counts the entries of the one it
// wraps: Put adds its key, Take removes it.
type countedStore struct {
	callback.PendingStore
	mu   sync.Mutex
	keys map[string]bool
}

func (c *countedStore) Put(ctx context.Context, key string, data []byte, expires time.Time) error {
	err := c.PendingStore.Put(ctx, key, data, expires)
	if err == nil {
		c.mu.Lock()
		if c.keys == nil {
			c.keys = map[string]bool{}
		}
		c.keys[key] = true
		c.mu.Unlock()
	}
	return err
}

func (c *countedStore) Take(ctx context.Context, key string) ([]byte, error) {
	data, err := c.PendingStore.Take(ctx, key)
	c.mu.Lock()
	delete(c.keys, key)
	c.mu.Unlock()
	return data, err
}

// Len is the number of entries put and not taken.
func (c *countedStore) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.keys)
}

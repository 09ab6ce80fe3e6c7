package callback_test

import (
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/oauthclient"
)

// TestCallbackDefaultStartOptions: Config.StartOptions reach the
// authorization request of every login the Handler starts, through
// Login() (which takes no options) and through Start (where a field the
// call sets wins), as the real provider receives them; and the login
// completes with the resource-bound grant.
func TestCallbackDefaultStartOptions(t *testing.T) {
	const redirect = "https://app.test/callback"
	srv := startServer(t, redirect)
	var mu sync.Mutex
	var seen []url.Values
	authPath := strings.TrimPrefix(srv.AuthURL, srv.Issuer)
	srv.SetHook(func(r *http.Request) {
		if r.URL.Path == authPath {
			mu.Lock()
			seen = append(seen, r.URL.Query())
			mu.Unlock()
		}
	})
	c := newClient(t, srv, redirect, nil)
	key := make([]byte, 32)
	rand.Read(key) // crypto/rand: never fails
	var logins int
	h, err := callback.New(callback.Config{Client: c, Keys: [][]byte{key},
		StartOptions: oauthclient.StartOptions{Resource: []string{"https://api.example.com"}, Prompt: "login", LoginHint: "alice"},
		OnLogin: func(w http.ResponseWriter, r *http.Request, t *oauthclient.Tokens, returnTo string) error {
			logins++
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	run := func(start func(w http.ResponseWriter, r *http.Request)) url.Values {
		t.Helper()
		w := httptest.NewRecorder()
		start(w, httptest.NewRequest("GET", "https://app.test/login", nil))
		loc := w.Header().Get("Location")
		mu.Lock()
		seen = nil
		mu.Unlock()
		cb, err := srv.Login(t.Context(), loc, "alice")
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		r := httptest.NewRequest("GET", cb, nil)
		for _, ck := range w.Result().Cookies() {
			r.AddCookie(ck)
		}
		w2 := httptest.NewRecorder()
		h.ServeHTTP(w2, r)
		if w2.Code != http.StatusSeeOther {
			t.Fatalf("callback answered %d", w2.Code)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			t.Fatal("the provider saw no authorization request")
		}
		return seen[0]
	}
	q := run(h.Login().ServeHTTP)
	if !slices.Equal(q["resource"], []string{"https://api.example.com"}) || q.Get("prompt") != "login" || q.Get("login_hint") != "alice" {
		t.Fatalf("Login(): the authorization request has resource %q, prompt %q, login_hint %q", q["resource"], q.Get("prompt"), q.Get("login_hint"))
	}
	q = run(func(w http.ResponseWriter, r *http.Request) {
		h.Start(w, r, callback.LoginOptions{StartOptions: oauthclient.StartOptions{Prompt: "consent"}})
	})
	if !slices.Equal(q["resource"], []string{"https://api.example.com"}) || q.Get("prompt") != "consent" {
		t.Fatalf("Start: the authorization request has resource %q, prompt %q", q["resource"], q.Get("prompt"))
	}
	if logins != 2 {
		t.Fatalf("%d logins completed, want 2", logins)
	}
}

package oauthclient

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// TestRefreshTokenActiveHostile: the introspection step answers true or
// false only for a 200 JSON object with a boolean "active"; anything else
// is an error (the engine then behaves as without the step). It sends the
// token with token_type_hint=refresh_token, as this client. Without an
// introspection endpoint in the metadata there is no step.
func TestRefreshTokenActiveHostile(t *testing.T) {
	h := newHostileAS(t)
	if c := h.client(t); c.refreshTokenActive() != nil {
		t.Fatal("a step without an introspection endpoint")
	}
	h.set("introspection_endpoint", h.srv.URL+"/introspect")
	var answer atomic.Pointer[func(w http.ResponseWriter)]
	var calls atomic.Int32
	h.srv.Config.Handler.(*http.ServeMux).HandleFunc("/introspect", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		r.ParseForm()
		if r.PostForm.Get("token") != "rt-1" || r.PostForm.Get("token_type_hint") != "refresh_token" || r.PostForm.Get("client_id") != "client-1" {
			http.Error(w, "bad request form", http.StatusBadRequest)
			return
		}
		(*answer.Load())(w)
	})
	check := h.client(t).refreshTokenActive()
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		want    bool
		wantErr error
	}{
		{"active", 200, `{"active":true,"client_id":"client-1"}`, true, nil},
		{"inactive", 200, `{"active":false}`, false, nil},
		{"active as a string", 200, `{"active":"true"}`, false, ErrMalformedResponse},
		{"no active", 200, `{"client_id":"client-1"}`, false, ErrMalformedResponse},
		{"HTML", 200, `<html>ok</html>`, false, ErrMalformedResponse},
		{"refused", 401, `{"error":"invalid_client"}`, false, ErrAuthorizationServer},
		{"unavailable", 503, `<html>down</html>`, false, ErrMalformedResponse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fn := func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}
			answer.Store(&fn)
			active, err := check(context.Background(), "rt-1")
			if active != tc.want || tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("= %v, %v; want %v, %v", active, err, tc.want, tc.wantErr)
			}
		})
	}
	if calls.Load() != 7 {
		t.Fatalf("%d introspection requests, want 7", calls.Load())
	}
}

// TestRefreshReportsDelivery: the refresh FetchFunc tells the engine what
// became of its request. An answer without rotation (a 503) clears the
// pending marker: the next refresh sends the token again. A request that
// left and got no answer (the server read it and dropped the connection)
// keeps the marker, and so does a 200 whose body is not a JSON object (a
// rotation may hide in it): the next refresh reports ErrRotationLost
// without a request. A request that never left (nothing listens at the token
// endpoint) clears it.
func TestRefreshReportsDelivery(t *testing.T) {
	ctx := context.Background()
	newSource := func(t *testing.T, h *hostileAS) *TokenSource {
		c := h.client(t)
		st := &tokenstore.Memory{}
		if err := engine.SaveRecord(ctx, st, "k", &engine.Record{RefreshToken: "rt-1", Subject: "alice",
			Issuer: h.srv.URL, ClientID: "client-1", Scopes: []string{"openid", "profile"}}); err != nil {
			t.Fatal(err)
		}
		src, err := c.TokenSource(ctx, TokenSourceConfig{Store: st, Key: "k"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	again := func(t *testing.T, src *TokenSource, first error) error {
		var te *tokenstore.TemporaryError
		if !errors.As(first, &te) {
			t.Fatalf("first refresh = %v, want a *TemporaryError", first)
		}
		time.Sleep(time.Until(te.RetryAfter) + 10*time.Millisecond)
		_, err := src.Token()
		return err
	}
	t.Run("answered", func(t *testing.T) {
		h := newHostileAS(t)
		h.setToken(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":"temporarily_unavailable"}`))
		})
		src := newSource(t, h)
		_, err := src.Token()
		if err := again(t, src, err); errors.Is(err, engine.ErrRotationLost) || h.tokenCalls.Load() != 2 {
			t.Fatalf("after a 503: %v, %d token requests; want the token sent again", err, h.tokenCalls.Load())
		}
	})
	t.Run("no answer", func(t *testing.T) {
		h := newHostileAS(t)
		h.setToken(func(w http.ResponseWriter, r *http.Request) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close() // the request arrived; no answer leaves
		})
		src := newSource(t, h)
		_, err := src.Token()
		if err := again(t, src, err); !errors.Is(err, engine.ErrRotationLost) || h.tokenCalls.Load() != 1 {
			t.Fatalf("after a request with no answer: %v, %d token requests; want ErrRotationLost and no resend", err, h.tokenCalls.Load())
		}
	})
	t.Run("unreadable 200", func(t *testing.T) {
		h := newHostileAS(t)
		h.setToken(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			w.Write([]byte(`<html>tokens</html>`)) // a rotation may hide in there
		})
		src := newSource(t, h)
		_, err := src.Token()
		if !errors.Is(err, ErrMalformedResponse) {
			t.Fatalf("first refresh = %v", err)
		}
		time.Sleep(1100 * time.Millisecond) // the backoff of a permanent failure: about 1 s
		if _, err := src.Token(); !errors.Is(err, engine.ErrRotationLost) || h.tokenCalls.Load() != 1 {
			t.Fatalf("after an unreadable 200: %v, %d token requests; want ErrRotationLost and no resend", err, h.tokenCalls.Load())
		}
	})
	t.Run("never left", func(t *testing.T) {
		h := newHostileAS(t)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := "https://" + l.Addr().String() + "/token"
		l.Close()
		h.set("token_endpoint", closed)
		src := newSource(t, h)
		_, err = src.Token()
		if err := again(t, src, err); errors.Is(err, engine.ErrRotationLost) {
			t.Fatalf("after a refused connection: %v; nothing was sent, the marker must go", err)
		}
	})
}

// TestRefreshUnreadable2xxKeepsMarker: a 2xx other than 200 whose body is
// not a JSON object (HTML, a JSON object cut short) is no usable answer:
// the server may have rotated and the new refresh token may hide in it,
// as with a 200 (parseTokenResponse hands a rotation over from any 2xx).
// The marker stays, and the next refresh reports ErrRotationLost without
// sending the possibly spent token again.
func TestRefreshUnreadable2xxKeepsMarker(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"HTML 201", http.StatusCreated, `<html>tokens</html>`},
		{"cut short 202", http.StatusAccepted, `{"access_token":"at-2","token_type":"Bearer","refresh_token":"rt-2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostileAS(t)
			h.setToken(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			})
			st := &tokenstore.Memory{}
			if err := engine.SaveRecord(ctx, st, "k", &engine.Record{RefreshToken: "rt-1", Subject: "alice",
				Issuer: h.srv.URL, ClientID: "client-1", Scopes: []string{"openid", "profile"}}); err != nil {
				t.Fatal(err)
			}
			src, err := h.client(t).TokenSource(ctx, TokenSourceConfig{Store: st, Key: "k"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := src.Token(); !errors.Is(err, ErrMalformedResponse) {
				t.Fatalf("first refresh = %v, want ErrMalformedResponse", err)
			}
			time.Sleep(1100 * time.Millisecond) // the backoff of a permanent failure: about 1 s
			if _, err := src.Token(); !errors.Is(err, engine.ErrRotationLost) || h.tokenCalls.Load() != 1 {
				t.Fatalf("after an unreadable %d: %v, %d token requests; want ErrRotationLost and no resend", tc.status, err, h.tokenCalls.Load())
			}
		})
	}
}

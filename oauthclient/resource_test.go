package oauthclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/validate"
)

func TestUserInfoSubjectMustMatchIDToken(t *testing.T) {
	for _, tc := range []struct {
		body string
		want error
	}{
		{`{"sub":"user-1","email":"a@example.com","email_verified":"true"}`, nil},
		{`{"sub":"user-2","email":"a@example.com"}`, validate.ErrSubject},
		{`{"email":"a@example.com"}`, validate.ErrSubject},
		{`<html>`, ErrMalformedResponse},
	} {
		h := newHostileAS(t)
		h.userinfo = tc.body
		c := h.client(t)
		p, good := h.start(t, c)
		toks, err := c.Exchange(context.Background(), p, good)
		if err != nil {
			t.Fatal(err)
		}
		claims, err := c.UserInfo(context.Background(), toks)
		if tc.want == nil {
			if err != nil {
				t.Fatalf("%s: %v", tc.body, err)
			}
			if e, ok := claims.VerifiedEmail(); !ok || e != "a@example.com" {
				t.Fatalf("verified email %q %v", e, ok)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Fatalf("%s: err = %v, want %v", tc.body, err, tc.want)
		}
	}
}

func TestRefreshedIDTokenMustKeepTheSubject(t *testing.T) {
	h := newHostileAS(t)
	c := h.client(t)
	p, good := h.start(t, c)
	toks, err := c.Exchange(context.Background(), p, good)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sub  string
		want error
	}{{"user-2", validate.ErrSubject}, {"user-1", nil}} {
		h.mu.Lock()
		h.nonce = "" // refreshed ID tokens carry no nonce
		h.mu.Unlock()
		h.setToken(func(w http.ResponseWriter, r *http.Request) {
			h.writeTokens(w, map[string]any{"access_token": "AT-2-" + tc.sub, "refresh_token": "RT-2-" + tc.sub,
				"id_token": h.idToken(nopTB{}, map[string]any{"sub": tc.sub, "nonce": nil})})
		})
		src, err := c.TokenSource(context.Background(), TokenSourceConfig{}, toks)
		if err != nil {
			t.Fatal(err)
		}
		cur, _ := src.Token()
		src.Invalidate(cur)
		_, err = src.TokenContext(context.Background())
		if tc.want == nil {
			if err != nil {
				t.Fatalf("same subject refused: %v", err)
			}
			continue
		}
		if !errors.Is(err, tc.want) || !errors.Is(err, ErrIDToken) {
			t.Fatalf("sub %s: err = %v, want %v", tc.sub, err, tc.want)
		}
	}
}

// A response refused after the server rotated the refresh token must not
// lose the rotated token: the spent one is never sent again.
func TestRefusedRefreshKeepsRotatedToken(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra func(h *hostileAS) map[string]any
		want  error
	}{
		{"ID token for another subject", func(h *hostileAS) map[string]any {
			return map[string]any{"id_token": h.idToken(nopTB{}, map[string]any{"sub": "user-2", "nonce": nil})}
		}, validate.ErrSubject},
		{"scope widened", func(h *hostileAS) map[string]any {
			return map[string]any{"scope": "openid profile admin", "id_token": nil}
		}, ErrScopeWidened},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostileAS(t)
			c := h.client(t)
			p, good := h.start(t, c)
			toks, err := c.Exchange(context.Background(), p, good)
			if err != nil {
				t.Fatal(err)
			}
			store := &tokenstore.Memory{}
			src, err := c.TokenSource(context.Background(), TokenSourceConfig{Store: store, Key: "k"}, toks)
			if err != nil {
				t.Fatal(err)
			}
			h.mu.Lock()
			h.nonce = ""
			h.mu.Unlock()
			var sent []string
			var mu sync.Mutex
			n := 0
			h.setToken(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				sent = append(sent, r.PostForm.Get("refresh_token"))
				n++
				i := n
				mu.Unlock()
				extra := tc.extra(h)
				if i > 1 { // the second answer is good
					extra = map[string]any{"id_token": nil, "scope": nil}
				}
				extra["access_token"] = fmt.Sprintf("AT-%d", i)
				extra["refresh_token"] = fmt.Sprintf("RT-%d", i)
				h.writeTokens(w, extra)
			})
			cur, _ := src.Token()
			src.Invalidate(cur)
			if _, err := src.Token(); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if rec, _ := tokenstore.LoadRecord(context.Background(), store, "k"); rec == nil || rec.RefreshToken != "RT-1" {
				t.Fatalf("store holds %v, want the rotated RT-1", rec)
			}
			time.Sleep(1100 * time.Millisecond) // the Source's first backoff
			if _, err := src.Token(); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(sent) != 2 || sent[0] != "RT-secret-value" || sent[1] != "RT-1" {
				t.Fatalf("refresh tokens sent: %v; the spent one must never be resent", sent)
			}
		})
	}
}

package oauthclient

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/oauthsafe/oauthsafe/validate"
)

func TestUserInfoSubjectMustMatchIDToken(t *testing.T) {
	for _, tc := range []struct {
		body string
		want error
	}{
		{`{"sub":"user-1","email":"a@example.com","email_verified":"true"}`, nil},
		{`{"sub":"user-2","email":"a@example.com"}`, &validate.ClaimError{Claim: "sub"}},
		{`{"email":"a@example.com"}`, &validate.ClaimError{Claim: "sub"}},
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
			if !claims.EmailVerified || claims.Email != "a@example.com" {
				t.Fatalf("verified email %q %v", claims.Email, claims.EmailVerified)
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
	}{{"user-2", &validate.ClaimError{Claim: "sub"}}, {"user-1", nil}} {
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

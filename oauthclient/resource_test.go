package oauthclient

import (
	"context"
	"errors"
	"testing"

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

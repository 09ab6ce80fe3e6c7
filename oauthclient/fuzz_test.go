package oauthclient

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"
)

func FuzzParseTokenResponse(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"a","token_type":"Bearer","expires_in":3600,"refresh_token":"r","scope":"openid","id_token":"x.y.z"}`,
		`{"access_token":"a","token_type":"bearer","expires_in":"60"}`,
		`{"error":"invalid_grant"}`, `<html>`, `null`, `[]`, `{"access_token":1}`,
		`{"access_token":"a","token_type":"Bearer","expires_in":1e999}`, `{"a":1}{"b":2}`,
		"\xef\xbb\xbf{\"access_token\":\"a\",\"token_type\":\"Bearer\",\"refresh_token\":\"r\"}",
		`{"access_token":"a","token_type":"Bearer","refresh_token":"r"}]`,
	} {
		f.Add(200, []byte(s))
		f.Add(201, []byte(s))
		f.Add(400, []byte(s))
	}
	now := time.Unix(1700000000, 0)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		var rotated string
		tr, err := parseTokenResponse(status, body, now, func(rt string) { rotated = rt })
		if rotated != "" && (status < 200 || status > 299) {
			t.Fatalf("a rotation handed over from status %d", status)
		}
		if err == nil && tr.token.RefreshToken != rotated {
			t.Fatal("an accepted refresh token was not handed over first")
		}
		if err != nil {
			if tr != nil {
				t.Fatal("result with error")
			}
			var ae *AuthError
			if !errors.As(err, &ae) && !errors.Is(err, errUnknownTokenType) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if status != 200 || tr.token.AccessToken == "" || tr.token.TokenType != "Bearer" {
			t.Fatalf("accepted a bad response: status %d", status)
		}
		if life := tr.token.Expiry.Sub(now); life <= 0 || life > maxExpiry {
			t.Fatalf("lifetime %v out of bounds", life)
		}
	})
}

// FuzzExchangeParams feeds arbitrary callback queries to Exchange: no panic,
// and no token request unless the exact state came back.
func FuzzExchangeParams(f *testing.F) {
	for _, s := range []string{"code=c&state=STATE&iss=ISS", "error=access_denied&state=STATE", "state=STATE&state=STATE", "%zz", "code=&state=", "iss=ISS&code=c"} {
		f.Add(s)
	}
	h := newHostileAS(&testing.T{})
	c, err := New(context.Background(), h.config())
	if err != nil {
		f.Fatal(err)
	}
	p, _, err := c.Start(context.Background(), StartOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, q string) {
		params, err := url.ParseQuery(q)
		if err != nil {
			return // the callback package refuses unparsable queries earlier
		}
		before := h.tokenCalls.Load()
		_, err = c.Exchange(context.Background(), p, params)
		called := h.tokenCalls.Load() != before
		if called && (len(params["state"]) != 1 || params.Get("state") != p.State()) {
			t.Fatal("token request made without the right state")
		}
		if err == nil && !called {
			t.Fatal("success without a token request")
		}
	})
}

package oauthclient

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"golang.org/x/oauth2"
)

// TestAuthErrorKinds: the two kinds of *AuthError, as its doc says. A
// malformed answer (Problem set) matches ErrMalformedResponse only, prints
// what was malformed, is temporary on a 5xx and carries no
// *oauth2.RetrieveError; an OAuth error answer matches
// ErrAuthorizationServer (and ErrLoginRequired for invalid_grant at the
// token endpoint), never ErrMalformedResponse, and reaches a RetrieveError.
// A malformed error status counts as an answer for the refresh engine:
// the token is sent again, as after any answer that did not rotate.
func TestAuthErrorKinds(t *testing.T) {
	c := &Client{}
	resp := &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}}
	_, err := successObject("token", http.StatusServiceUnavailable, []byte("<html>down</html>"))
	err = c.withResponse(err, url.Values{}, resp, nil)
	var ae *AuthError
	var re *oauth2.RetrieveError
	if !errors.As(err, &ae) || ae.Problem != "body is HTML" || !errors.Is(err, ErrMalformedResponse) ||
		errors.Is(err, ErrAuthorizationServer) || errors.Is(err, tokenstore.ErrLoginRequired) || !ae.Temporary() || errors.As(err, &re) {
		t.Errorf("malformed answer: %#v", err)
	}
	if want := "oauthclient: malformed token response (HTTP 503): body is HTML"; err.Error() != want {
		t.Errorf("malformed answer prints %q, want %q", err, want)
	}

	resp.StatusCode = http.StatusBadRequest
	_, err = successObject("token", http.StatusBadRequest, []byte(`{"error":"invalid_grant"}`))
	err = c.withResponse(err, url.Values{}, resp, nil)
	if !errors.As(err, &ae) || ae.Problem != "" || errors.Is(err, ErrMalformedResponse) || !errors.Is(err, ErrAuthorizationServer) ||
		!errors.Is(err, tokenstore.ErrLoginRequired) || ae.Temporary() || !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("OAuth error answer: %#v", err)
	}

	ctx := context.Background()
	h := newHostileAS(t)
	h.setToken(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("<html>down</html>"))
	})
	st := &tokenstore.Memory{}
	if err := engine.SaveRecord(ctx, st, "k", &engine.Record{RefreshToken: "rt-1", Subject: "alice",
		Issuer: h.srv.URL, ClientID: "client-1", Scopes: []string{"openid"}}); err != nil {
		t.Fatal(err)
	}
	src, err := h.client(t).TokenSource(ctx, TokenSourceConfig{Store: st, Key: "k"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Token()
	var te *tokenstore.TemporaryError
	if !errors.As(err, &te) || !errors.Is(err, ErrMalformedResponse) {
		t.Fatalf("first refresh = %v, want a *TemporaryError matching ErrMalformedResponse", err)
	}
	time.Sleep(time.Until(te.RetryAfter) + 10*time.Millisecond)
	if _, err := src.Token(); errors.Is(err, engine.ErrRotationLost) || h.tokenCalls.Load() != 2 {
		t.Fatalf("after a malformed 503: %v, %d token requests; want the token sent again", err, h.tokenCalls.Load())
	}
}

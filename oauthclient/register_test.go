package oauthclient

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe/strictnet"
)

// TestParseRegistration: the registered method is the answer's, else the
// one asked for, else RFC 7591's default; a method this client does not
// use, or a secret method without a secret, is refused; a public client
// keeps no secret.
func TestParseRegistration(t *testing.T) {
	for _, tc := range []struct {
		body   string
		asked  AuthMethod
		method AuthMethod
		secret bool
		err    error
	}{
		{`{"client_id":"c"}`, AuthNone, AuthNone, false, nil},
		{`{"client_id":"c","client_secret":"s"}`, AuthNone, AuthNone, false, nil},
		{`{"client_id":"c","client_secret":"s"}`, "", AuthClientSecretBasic, true, nil},
		{`{"client_id":"c","client_secret":"s","token_endpoint_auth_method":"client_secret_post"}`, AuthNone, AuthClientSecretPost, true, nil},
		{`{"client_id":"c","token_endpoint_auth_method":"client_secret_basic"}`, AuthNone, "", false, strictnet.ErrPolicy},
		{`{"client_id":"c","token_endpoint_auth_method":"tls_client_auth"}`, AuthNone, "", false, strictnet.ErrPolicy},
		{`{"client_secret":"s"}`, AuthNone, "", false, ErrMalformedResponse},
		{`{"client_id":"c\u0007"}`, AuthNone, "", false, ErrMalformedResponse},
		{`{"error":"invalid_redirect_uri"}`, AuthNone, "", false, ErrAuthorizationServer},
		{`<html>`, AuthNone, "", false, ErrMalformedResponse},
	} {
		rc, err := parseRegistration(http.StatusCreated, []byte(tc.body), tc.asked)
		if tc.err != nil {
			if !errors.Is(err, tc.err) || rc != nil {
				t.Errorf("%s: %v, want %v", tc.body, err, tc.err)
			}
			continue
		}
		if err != nil || rc.AuthMethod != tc.method || rc.ClientSecret.IsZero() == tc.secret {
			t.Errorf("%s: %+v, %v; want method %s, secret %v", tc.body, rc, err, tc.method, tc.secret)
		}
	}
}

func FuzzParseRegistration(f *testing.F) {
	for _, s := range []string{
		`{"client_id":"c","client_secret":"s","token_endpoint_auth_method":"client_secret_basic"}`,
		`{"client_id":"c"}`, `{"error":"invalid_client_metadata","error_description":"no"}`, `<html>`, `null`, `[]`,
		`{"client_id":1}`, `{"client_id":"c","token_endpoint_auth_method":"private_key_jwt"}`,
	} {
		f.Add(201, []byte(s))
		f.Add(400, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		rc, err := parseRegistration(status, body, AuthNone)
		if err != nil {
			var ae *AuthError
			if rc != nil || !errors.As(err, &ae) && !errors.Is(err, strictnet.ErrPolicy) {
				t.Fatalf("untyped error or result with error: %v", err)
			}
			return
		}
		if rc.ClientID == "" || strings.ContainsAny(rc.ClientID, "\x00\n") {
			t.Fatal("empty or unclean client_id accepted")
		}
		if rc.AuthMethod == AuthNone && !rc.ClientSecret.IsZero() {
			t.Fatal("a public client kept a secret")
		}
	})
}

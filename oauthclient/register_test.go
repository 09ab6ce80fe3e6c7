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
		asked  authMethod
		method authMethod
		secret bool
		err    error
	}{
		{`{"client_id":"c"}`, authNone, authNone, false, nil},
		{`{"client_id":"c","client_secret":"s"}`, authNone, authNone, false, nil},
		{`{"client_id":"c","client_secret":"s"}`, "", authClientSecretBasic, true, nil},
		{`{"client_id":"c","client_secret":"s","token_endpoint_auth_method":"client_secret_post"}`, authNone, authClientSecretPost, true, nil},
		{`{"client_id":"c","token_endpoint_auth_method":"client_secret_basic"}`, authNone, "", false, strictnet.ErrPolicy},
		{`{"client_id":"c","token_endpoint_auth_method":"tls_client_auth"}`, authNone, "", false, strictnet.ErrPolicy},
		{`{"client_secret":"s"}`, authNone, "", false, ErrMalformedResponse},
		{`{"client_id":"c\u0007"}`, authNone, "", false, ErrMalformedResponse},
		{`{"error":"invalid_redirect_uri"}`, authNone, "", false, ErrAuthorizationServer},
		{`<html>`, authNone, "", false, ErrMalformedResponse},
	} {
		rc, err := parseRegistration(http.StatusCreated, []byte(tc.body), tc.asked)
		if tc.err != nil {
			if !errors.Is(err, tc.err) || rc != nil {
				t.Errorf("%s: %v, want %v", tc.body, err, tc.err)
			}
			continue
		}
		if err != nil || authMethod(rc.AuthMethod) != tc.method || rc.ClientSecret.IsZero() == tc.secret {
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
		rc, err := parseRegistration(status, body, authNone)
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
		if authMethod(rc.AuthMethod) == authNone && !rc.ClientSecret.IsZero() {
			t.Fatal("a public client kept a secret")
		}
	})
}

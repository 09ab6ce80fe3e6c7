package oauthtest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// introspectAs introspects token as a client (basic auth when secret is
// set, else the public client's client_id in the form) and returns the
// status and the decoded answer.
func introspectAs(t *testing.T, s *Server, id, secret, token, hint string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	if secret == "" {
		form.Set("client_id", id)
	}
	req, _ := http.NewRequest(http.MethodPost, s.IntrospectionURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(id, secret)
	}
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// TestRefreshTokenIntrospection: the client a refresh token was issued to
// introspects it (RFC 7662), a public client included: a never-used token
// is active:true, a rotated one active:false, and introspecting the spent
// token does not trigger reuse detection (RevokeFamilyOnReuse): the
// current token still refreshes. Another client learns nothing
// (active:false), a wrong secret is invalid_client, and the metadata says
// a public client may introspect.
func TestRefreshTokenIntrospection(t *testing.T) {
	s := start(t, Options{RevokeFamilyOnReuse: true})
	native := oauthConfig(s, ClientNative, "", oauth2.AuthStyleInParams, "http://127.0.0.1:1234/callback", userScopes...)
	tok := codeFlow(t, s, native, UserBob)

	st, m := introspectAs(t, s, ClientNative, "", tok.RefreshToken, "refresh_token")
	if st != 200 || m["active"] != true || m["client_id"] != ClientNative || m["sub"] != Subject(UserBob) || m["iss"] != s.Issuer {
		t.Fatalf("never-used refresh token: %d %v", st, m)
	}
	if _, m := introspectAs(t, s, ClientNative, "", tok.RefreshToken, ""); m["active"] != true {
		t.Fatalf("without a hint: %v", m)
	}
	t2, err := refresh(t, s, native, tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, m := introspectAs(t, s, ClientNative, "", tok.RefreshToken, "refresh_token"); m["active"] != false || len(m) != 1 {
		t.Fatalf("rotated refresh token: %v", m)
	}
	if _, err := refresh(t, s, native, t2.RefreshToken); err != nil {
		t.Fatalf("the current token after introspecting the spent one (no reuse detection): %v", err)
	}
	if got := s.TokenRequests("refresh_token"); got != 2 {
		t.Fatalf("%d refresh requests, want 2 (introspection is no use)", got)
	}

	web := oauthConfig(s, ClientWeb, WebSecret, oauth2.AuthStyleInHeader, WebRedirectURI, userScopes...)
	wt := codeFlow(t, s, web, UserAlice)
	if st, m := introspectAs(t, s, ClientWeb, WebSecret, wt.RefreshToken, "refresh_token"); st != 200 || m["active"] != true {
		t.Fatalf("confidential client, own token: %d %v", st, m)
	}
	if _, m := introspectAs(t, s, ClientWebJWTAccess, WebJWTAccessSecret, wt.RefreshToken, "refresh_token"); m["active"] != false {
		t.Fatalf("another client sees the refresh token: %v", m)
	}
	if _, m := introspectAs(t, s, ClientNative, "", wt.RefreshToken, "refresh_token"); m["active"] != false {
		t.Fatalf("a public client sees another client's refresh token: %v", m)
	}
	if st, m := introspectAs(t, s, ClientWeb, "wrong", wt.RefreshToken, "refresh_token"); st != 401 || m["error"] != "invalid_client" {
		t.Fatalf("wrong secret: %d %v", st, m)
	}
	if _, m := introspectAs(t, s, ClientNative, "", "not-a-token", "refresh_token"); m["active"] != false {
		t.Fatalf("unknown token: %v", m)
	}

	doc := getJSON(t, s.HTTPClient(), s.Issuer+discoveryPath)
	methods, _ := doc["introspection_endpoint_auth_methods_supported"].([]any)
	found := false
	for _, m := range methods {
		found = found || m == "none"
	}
	if !found {
		t.Fatalf("introspection_endpoint_auth_methods_supported = %v, want none among them", methods)
	}
}

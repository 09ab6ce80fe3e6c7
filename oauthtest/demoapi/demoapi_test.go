package demoapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

func TestRequire(t *testing.T) {
	as, err := oauthtest.Start(oauthtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer as.Close()
	ctx := context.Background()
	api, err := New(ctx, as)
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := secret.FromReader(strings.NewReader(oauthtest.ServiceSecret))
	c, err := oauthclient.New(ctx, oauthclient.Config{Issuer: as.Issuer, ClientID: oauthtest.ClientService, ClientSecret: secret,
		Scopes: []string{oauthtest.ScopeAPIRead}, HTTP: strictnet.Config{RootCAs: as.RootCAs()}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.ClientCredentials(oauthclient.GrantOptions{NoDPoP: true /* a bearer token, used by hand below */}).TokenContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ok := func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }
	for _, tc := range []struct {
		scope, auth string
		want        int
	}{
		{oauthtest.ScopeAPIRead, "Bearer " + tok.AccessToken, http.StatusTeapot},
		{oauthtest.ScopeAPIWrite, "Bearer " + tok.AccessToken, http.StatusForbidden},
		{oauthtest.ScopeAPIRead, "Bearer forged", http.StatusUnauthorized},
		{oauthtest.ScopeAPIRead, "", http.StatusUnauthorized},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		w := httptest.NewRecorder()
		api.Require(tc.scope, ok)(w, r)
		if w.Code != tc.want {
			t.Errorf("scope %s auth %.12q: %d, want %d", tc.scope, tc.auth, w.Code, tc.want)
		}
	}
}

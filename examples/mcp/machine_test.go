package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/resourceclient"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// TestMachineContext: the context's machine credentials configure the
// matching Grant, bound to the issuer the resource names; a client
// secret without an issuer is a machine client only where the server
// offers client credentials and not the authorization code grant; a
// context with an issuer stays a pre-registered client.
func TestMachineContext(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	jwt := enc([]byte(`{"alg":"ES256"}`)) + "." + enc([]byte(fmt.Sprintf(`{"exp":%d}`, time.Now().Add(time.Hour).Unix()))) + ".c2ln"
	grants := []string{"client_credentials"}
	var (
		mu    sync.Mutex
		basic string // the client id and secret of the last token request at /as/token
		srv   *httptest.Server
	)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/as/token":
			id, sec, _ := r.BasicAuth()
			mu.Lock()
			basic = id + ":" + sec
			mu.Unlock()
			json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 3600})
		case "/idp/token":
			json.NewEncoder(w).Encode(map[string]any{"access_token": jwt, "token_type": "N_A",
				"issued_token_type": "urn:ietf:params:oauth:token-type:id-jag", "expires_in": 300})
		case "/mcp":
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", resource_metadata="`+srv.URL+`/.well-known/oauth-protected-resource/mcp"`)
			w.WriteHeader(http.StatusUnauthorized)
		case "/.well-known/oauth-protected-resource/mcp":
			json.NewEncoder(w).Encode(map[string]any{"resource": srv.URL + "/mcp", "authorization_servers": []string{srv.URL + "/as"}})
		case "/.well-known/oauth-authorization-server/as":
			json.NewEncoder(w).Encode(map[string]any{"issuer": srv.URL + "/as", "token_endpoint": srv.URL + "/as/token", "grant_types_supported": grants})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := json.Marshal(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	issuer := srv.URL + "/as"
	// The Grants' types are unexported: a check reads a Grant through its
	// printed summary (kind, issuer, client id, which secrets are set),
	// and the client secret it holds through the token request it sends.
	sentSecret := func(g resourceclient.Grant) string {
		src, err := g.TokenSource(context.Background(), resourceclient.Server{Resource: srv.URL + "/mcp", Issuer: issuer,
			Metadata: oauthclient.Metadata{Issuer: issuer, TokenEndpoint: issuer + "/token"}, HTTP: strictnet.Config{AllowLoopbackHTTP: true}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := src.Token(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return basic
	}
	is := func(g resourceclient.Grant, summary string) bool { return fmt.Sprint(g) == summary }

	for _, tc := range []struct {
		name, raw string
		grants    []string
		check     func(g resourceclient.Grant) bool
		wantErr   string
	}{
		{name: "private key", raw: `{"client_id":"c","private_key_pem":` + string(keyPEM) + `,"signing_algorithm":"ES256"}`,
			check: func(g resourceclient.Grant) bool {
				return is(g, "resourceclient.ClientCredentials{issuer="+issuer+", client_id=c, auth_method=, client_secret=none, private_key=redacted, key_id=}")
			}},
		{name: "client secret, client credentials only", raw: `{"client_id":"c","client_secret":"s"}`,
			check: func(g resourceclient.Grant) bool {
				return is(g, "resourceclient.ClientCredentials{issuer="+issuer+", client_id=c, auth_method=, client_secret=redacted}") && sentSecret(g) == "c:s"
			}},
		{name: "client secret, authorization code offered", raw: `{"client_id":"c","client_secret":"s"}`,
			grants: []string{"authorization_code", "client_credentials"}, wantErr: "needs the issuer it belongs to"},
		{name: "workload assertion", raw: `{"client_id":"w","valid_jwt":"` + jwt + `","expired_jwt":"x","wrong_audience_jwt":"y"}`,
			check: func(g resourceclient.Grant) bool {
				return is(g, "resourceclient.JWTBearer{issuer="+issuer+", client_id=w, auth_method=, client_secret=none, assertion=redacted}")
			}},
		{name: "enterprise-managed", raw: `{"client_id":"x","client_secret":"s","idp_client_id":"i","idp_id_token":"` + jwt +
			`","idp_issuer":"` + srv.URL + `/idp","idp_token_endpoint":"` + srv.URL + `/idp/token"}`,
			check: func(g resourceclient.Grant) bool {
				return is(g, "resourceclient.EnterpriseManaged{issuer="+issuer+", client_id=x, auth_method=, client_secret=redacted, idp=redacted, subject_token=redacted, subject_token_type=}") &&
					sentSecret(g) == "x:s"
			}},
		{name: "enterprise-managed without the identity provider", raw: `{"client_id":"x","idp_id_token":"` + jwt + `"}`,
			wantErr: "needs idp_issuer"},
		{name: "private key at the context's issuer", raw: `{"client_id":"c","private_key_pem":` + string(keyPEM) + `,"issuer":"https://as.example"}`,
			check: func(g resourceclient.Grant) bool {
				return is(g, "resourceclient.ClientCredentials{issuer=https://as.example, client_id=c, auth_method=, client_secret=none, private_key=redacted, key_id=}")
			}},
		{name: "machine credentials without a client", raw: `{"valid_jwt":"` + jwt + `"}`, wantErr: "need the client_id"},
		{name: "pre-registered with its issuer", raw: `{"client_id":"c","client_secret":"s","issuer":"` + issuer + `"}`,
			check: func(g resourceclient.Grant) bool { return g == nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			grants = []string{"client_credentials"}
			if tc.grants != nil {
				grants = tc.grants
			}
			cfg := resourceclient.Config{Resource: srv.URL + "/mcp"}
			err := conformance(&cfg, tc.raw)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(cfg.Grant) {
				t.Fatalf("Grant %v", cfg.Grant)
			}
			if cfg.Grant != nil && cfg.Credentials != nil {
				t.Fatal("both a Grant and pre-registered Credentials")
			}
		})
	}
}

package machine_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/oauthtest/demoapi"
)

// proofNonce is the nonce claim of a DPoP proof, "" without one.
func proofNonce(t *testing.T, proof string) string {
	t.Helper()
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		t.Fatalf("a DPoP header that is not a JWS")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Nonce string `json:"nonce"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.Nonce
}

// TestDPoPOnEveryGrant: a server whose metadata lists
// dpop_signing_alg_values_supported gets a DPoP proof on every grant that
// issues a service token (client credentials, JWT-bearer, token
// exchange) without the caller asking; its nonce is taken with one retry
// (RFC 9449 §8); the token is DPoP-bound to the source's in-memory key,
// so the API accepts it with a proof of that key and refuses it as a
// bearer token; and NoDPoP turns the automatic DPoP off.
func TestDPoPOnEveryGrant(t *testing.T) {
	ctx := context.Background()
	srv := start(t, oauthtest.Options{DPoPNonce: true})
	wl, err := srv.NewWorkloadIssuer("https://cluster.example/workloads")
	if err != nil {
		t.Fatal(err)
	}
	_, call, bearer := demoAPI(t, srv, demoapi.ResourceConfig{})
	scopes := []string{oauthtest.ScopeAPIRead}
	workload := func(context.Context, string) (string, error) {
		return wl.Sign("system:serviceaccount:shop:orders", srv.Issuer, time.Hour)
	}
	subject := newClient(t, srv, oauthclient.Config{
		ClientID: oauthtest.ClientServicePost, ClientSecret: secretOf(t, oauthtest.ServicePostSecret),
		AuthMethod: "client_secret_post",
	}).ClientCredentials(oauthclient.GrantOptions{Scopes: scopes, NoDPoP: true})

	grants := []struct {
		grant string
		src   func(noDPoP bool) *oauthclient.TokenSource
	}{
		{"client_credentials", func(no bool) *oauthclient.TokenSource {
			return serviceClient(t, srv).ClientCredentials(oauthclient.GrantOptions{Scopes: scopes, NoDPoP: no})
		}},
		{"urn:ietf:params:oauth:grant-type:jwt-bearer", func(no bool) *oauthclient.TokenSource {
			return newClient(t, srv, oauthclient.Config{ClientID: oauthtest.ClientNative}).JWTBearer(
				assertionFunc(workload), oauthclient.GrantOptions{Scopes: scopes, NoDPoP: no})
		}},
		{"urn:ietf:params:oauth:grant-type:token-exchange", func(no bool) *oauthclient.TokenSource {
			return serviceClient(t, srv).TokenExchange(oauthclient.TokenExchangeOptions{
				SubjectToken: subject, SubjectTokenType: oauthtest.TokenTypeAccess, Scopes: scopes, NoDPoP: no,
			})
		}},
	}
	for _, g := range grants {
		t.Run(g.grant, func(t *testing.T) {
			rec := record(t, srv)
			src := g.src(false)
			tok, err := src.TokenContext(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tok.Type() != "DPoP" {
				t.Fatalf("token_type %q, want DPoP", tok.Type())
			}
			forms, proofs := rec.all()
			var sent []string // proofs of this grant's requests
			for i, f := range forms {
				if url.Values(f).Get("grant_type") == g.grant {
					sent = append(sent, proofs[i])
				}
			}
			// The server asks for its nonce: one retry, with it.
			if len(sent) != 2 || sent[0] == "" || proofNonce(t, sent[0]) != "" || proofNonce(t, sent[1]) == "" {
				t.Fatalf("%d token requests of the grant, want a proof without a nonce and one retry with the server's", len(sent))
			}
			if code := call(src); code != http.StatusOK {
				t.Fatalf("the API answered %d to the token with a proof of the source's key", code)
			}
			if code := bearer(tok.AccessToken); code != http.StatusUnauthorized {
				t.Fatalf("the DPoP-bound token was accepted as a bearer token (%d)", code)
			}

			// NoDPoP: no proof, a bearer token.
			rec = record(t, srv)
			tok, err = g.src(true).TokenContext(ctx)
			if err != nil {
				t.Fatal(err)
			}
			forms, proofs = rec.all()
			for i, f := range forms {
				if url.Values(f).Get("grant_type") == g.grant && proofs[i] != "" {
					t.Fatal("NoDPoP: a proof was sent")
				}
			}
			if tok.Type() != "Bearer" {
				t.Fatalf("NoDPoP: token_type %q", tok.Type())
			}
		})
	}
}

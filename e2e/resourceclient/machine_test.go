package resourceclient_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauthsafe/oauthsafe/e2e/internal/flow"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/assertion"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/oauthtest/demoapi"
	"github.com/oauthsafe/oauthsafe/resourceclient"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// TestResourceFirstMachineClient (S28, S31, S27): a machine client knows
// the resource's URL and its own credentials at one issuer, nothing else:
// the resource's 401 leads to its metadata and its authorization server,
// and the ready-made Grant gets the token there without a browser or a
// registration: client credentials (client_secret_basic), a workload
// assertion (the JWT-bearer grant), and enterprise-managed authorization
// (an ID-JAG exchanged at the company's identity provider). Each token is
// requested with the resource, DPoP-bound because the provider lists
// ES256, and the demo API accepts it with a proof. Configured for another
// issuer, the Grant is refused before anything is sent to the one the
// resource names.
func TestResourceFirstMachineClient(t *testing.T) {
	ctx := context.Background()
	as := startAS(t)
	idp := startAS(t)
	as.TrustIdentityProvider(idp)
	log := watch(as)
	host := newResourceHost(t, as)
	wl, err := as.NewWorkloadIssuer("https://cluster.example/workloads")
	if err != nil {
		t.Fatal(err)
	}
	sec := func(s string) secret.Value {
		v, err := secret.FromReader(strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	// The user's single sign-on at the identity provider, and this
	// client's registration there.
	login, err := oauthclient.New(ctx, oauthclient.Config{Issuer: idp.Issuer, ClientID: oauthtest.ClientNative,
		RedirectURL: oauthtest.NativeRedirectURI, Scopes: []string{"openid"}, HTTP: strictnet.Config{RootCAs: idp.RootCAs()}})
	if err != nil {
		t.Fatal(err)
	}
	toks, _ := flow.Login(t, idp, login, oauthclient.StartOptions{}, oauthtest.UserAlice)
	idpClient, err := oauthclient.New(ctx, oauthclient.Config{Issuer: idp.Issuer, ClientID: oauthtest.ClientService,
		ClientSecret: sec(oauthtest.ServiceSecret), HTTP: strictnet.Config{RootCAs: idp.RootCAs()}})
	if err != nil {
		t.Fatal(err)
	}

	grants := []struct {
		name, path, grantType string
		grant                 func(issuer string) resourceclient.Grant
	}{
		{"client credentials", "/cc", "client_credentials", func(issuer string) resourceclient.Grant {
			return resourceclient.ClientCredentials(resourceclient.Credentials{Issuer: issuer, ClientID: oauthtest.ClientService, ClientSecret: sec(oauthtest.ServiceSecret)})
		}},
		{"workload assertion", "/wl", "urn:ietf:params:oauth:grant-type:jwt-bearer", func(issuer string) resourceclient.Grant {
			return resourceclient.JWTBearer(resourceclient.Credentials{Issuer: issuer, ClientID: oauthtest.ClientNative}, assertion.Func(func(_ context.Context, aud string) (string, error) {
				return wl.Sign("system:serviceaccount:shop:orders", aud, time.Hour)
			}))
		}},
		{"enterprise-managed", "/xaa", "urn:ietf:params:oauth:grant-type:jwt-bearer", func(issuer string) resourceclient.Grant {
			return resourceclient.EnterpriseManaged(resourceclient.Credentials{Issuer: issuer, ClientID: oauthtest.ClientService, ClientSecret: sec(oauthtest.ServiceSecret)},
				idpClient, oauthclient.TokenExchangeOptions{SubjectToken: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: toks.RawIDToken()})})
		}},
	}
	for _, g := range grants {
		t.Run(g.name, func(t *testing.T) {
			resource := host.add(t, as, g.path, demoapi.ResourceConfig{ChallengeScope: []string{oauthtest.ScopeAPIRead}})
			cfg := resourceclient.Config{Resource: resource, Grant: g.grant(as.Issuer), HTTP: strictnet.Config{RootCAs: as.RootCAs()}}
			cfg.Browser = func(context.Context, string) (*url.URL, error) {
				t.Fatal("a machine client opened the browser")
				return nil, nil
			}
			cfg.RedirectURL = redirect
			rc, err := resourceclient.New(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			before := len(log.tokens())
			idpBefore := idp.TokenRequests("urn:ietf:params:oauth:grant-type:token-exchange")
			if code, err := get(t, rc.HTTPClient(), resource+"/read"); err != nil || code != http.StatusOK {
				t.Fatalf("GET %s/read: %d, %v", resource, code, err)
			}
			reqs := log.tokens()[before:]
			if len(reqs) != 1 || reqs[0].Get("grant_type") != g.grantType || reqs[0].Get("resource") != resource || reqs[0].Get("scope") != oauthtest.ScopeAPIRead {
				var got []string // grant, resource and scope only: no assertion in the output
				for _, r := range reqs {
					got = append(got, r.Get("grant_type")+" "+r.Get("resource")+" "+r.Get("scope"))
				}
				t.Fatalf("token requests %q: want one %s grant for the resource and the challenge's scope", got, g.grantType)
			}
			if g.name == "enterprise-managed" && idp.TokenRequests("urn:ietf:params:oauth:grant-type:token-exchange") != idpBefore+1 {
				t.Fatal("no token exchange at the identity provider")
			}
			seen := host.seenAt(g.path)
			if len(seen) != 1 || !strings.HasPrefix(seen[0], "DPoP ") {
				t.Fatalf("the resource saw %d tokens (%q): want one DPoP-bound token", len(seen), schemes(seen))
			}
			if as.Count("/authorize") != 0 || as.Registrations() != 0 {
				t.Fatal("a machine client authorized or registered")
			}

			// Configured for another issuer: refused, nothing sent.
			cfg.Grant = g.grant("https://elsewhere.example")
			other, err := resourceclient.New(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			before, idpBefore = len(log.tokens()), idp.TokenRequests("urn:ietf:params:oauth:grant-type:token-exchange")
			if _, err := get(t, other.HTTPClient(), resource+"/read"); !errors.Is(err, resourceclient.ErrGrantIssuer) {
				t.Fatalf("a client of another issuer: err = %v, want ErrGrantIssuer", err)
			}
			if len(log.tokens()) != before || idp.TokenRequests("urn:ietf:params:oauth:grant-type:token-exchange") != idpBefore {
				t.Fatal("a token request was sent for a client of another issuer")
			}
		})
	}
}

// schemes are the schemes of Authorization values (never the tokens).
func schemes(auth []string) []string {
	out := make([]string, len(auth))
	for i, a := range auth {
		out[i], _, _ = strings.Cut(a, " ")
	}
	return out
}

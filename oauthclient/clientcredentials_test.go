package oauthclient_test

import (
	"context"
	"errors"
	"testing"

	"github.com/oauthsafe/oauthsafe"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// TestRefusedBeforeAnyRequest: a public client (no authentication) gets a
// policy refusal from its first Token call, and a nil client a
// configuration error, both without a request (the token endpoint here
// does not exist). The grant itself runs against the in-process provider
// in the e2e module.
func TestRefusedBeforeAnyRequest(t *testing.T) {
	ctx := context.Background()
	public, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer: "https://as.invalid", ClientID: "public",
		Metadata: &oauthclient.Metadata{
			Issuer:                        "https://as.invalid",
			AuthorizationEndpoint:         "https://as.invalid/authorize",
			TokenEndpoint:                 "https://as.invalid/token",
			CodeChallengeMethodsSupported: []string{"S256"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := public.ClientCredentials(oauthclient.GrantOptions{}).TokenContext(ctx); !errors.Is(err, strictnet.ErrPolicy) {
		t.Errorf("public client: %v, want ErrPolicy", err)
	}
	if _, err := (*oauthclient.Client)(nil).ClientCredentials(oauthclient.GrantOptions{}).TokenContext(ctx); !errors.Is(err, oauthsafe.ErrConfig) {
		t.Errorf("nil client: %v, want ErrConfig", err)
	}
	bad := oauthclient.GrantOptions{Resource: []string{"not a uri#fragment"}}
	if _, err := public.ClientCredentials(bad).TokenContext(ctx); !errors.Is(err, strictnet.ErrPolicy) {
		t.Errorf("bad resource: %v, want ErrPolicy", err)
	}
}

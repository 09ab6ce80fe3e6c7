package machine_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/assertion"
	"github.com/oauthsafe/oauthsafe/oauthtest"
)

// TestClientAssertionSource: private_key_jwt with assertions made
// elsewhere (Config.ClientAssertion): a file the platform rotates, read
// again for the next request, and an expired one refused before it is
// sent (S31); it cannot be combined with PrivateKey (S17: one method).
func TestClientAssertionSource(t *testing.T) {
	ctx := context.Background()
	srv := start(t, oauthtest.Options{})
	// The platform signs client assertions with the client's key (the
	// server refuses a jti it has seen, so each token is used once here).
	sign := func(life time.Duration) string {
		t.Helper()
		raw, err := (assertion.Signed{Key: srv.ClientKey, KeyID: srv.ClientKeyID, Issuer: oauthtest.ClientPrivateKeyJWT,
			Subject: oauthtest.ClientPrivateKeyJWT, Now: func() time.Time { return time.Now().Add(life - assertion.Lifetime) }}).
			Assertion(ctx, srv.Issuer)
		if err != nil {
			t.Fatal(err)
		}
		return raw.Reveal()
	}
	rec := record(t, srv)
	path := filepath.Join(t.TempDir(), "client-assertion")
	first := sign(time.Minute)
	writeSecretFile(t, path, first)
	c := newClient(t, srv, oauthclient.Config{ClientID: oauthtest.ClientPrivateKeyJWT, ClientAssertion: &assertion.File{Path: path}})
	if m := c.Config().AuthMethod; m != oauthclient.AuthPrivateKeyJWT {
		t.Fatalf("auth method %s", m)
	}
	src := c.ClientCredentials(oauthclient.ClientCredentialsOptions{NoDPoP: true})
	tok, err := src.TokenContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := rec.last(); f["client_assertion"][0] != first {
		t.Fatal("the file's assertion was not sent")
	}
	second := sign(time.Minute)
	writeSecretFile(t, path, second)
	src.Invalidate(tok)
	if tok, err = src.TokenContext(ctx); err != nil {
		t.Fatal(err)
	}
	if f, _ := rec.last(); f["client_assertion"][0] != second {
		t.Fatal("after the rotation the old assertion was sent")
	}
	writeSecretFile(t, path, sign(-time.Second))
	src.Invalidate(tok)
	before := srv.TokenRequests("client_credentials")
	if _, err := src.TokenContext(ctx); !errors.Is(err, assertion.ErrExpired) || srv.TokenRequests("client_credentials") != before {
		t.Fatalf("expired client assertion: %v (%d requests, want %d)", err, srv.TokenRequests("client_credentials"), before)
	}
	if _, err := oauthclient.New(ctx, oauthclient.Config{Issuer: srv.Issuer, ClientID: oauthtest.ClientPrivateKeyJWT,
		PrivateKey: srv.ClientKey, ClientAssertion: &assertion.File{Path: path}, Metadata: &oauthclient.Metadata{Issuer: srv.Issuer, TokenEndpoint: srv.TokenURL}}); !errors.Is(err, oauthsafe.ErrConfig) {
		t.Fatalf("PrivateKey and ClientAssertion: %v, want ErrConfig", err)
	}
}

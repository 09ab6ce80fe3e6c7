package machine_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe"

	"github.com/go-jose/go-jose/v4"
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
		return signClientAssertion(t, srv, life)
	}
	rec := record(t, srv)
	path := filepath.Join(t.TempDir(), "client-assertion")
	first := sign(time.Minute)
	writeSecretFile(t, path, first)
	c := newClient(t, srv, oauthclient.Config{ClientID: oauthtest.ClientPrivateKeyJWT, ClientAssertion: assertion.File(path)})
	if m := c.Config().AuthMethod; m != "private_key_jwt" {
		t.Fatalf("auth method %s", m)
	}
	src := c.ClientCredentials(oauthclient.GrantOptions{NoDPoP: true})
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
		PrivateKey: srv.ClientKey, ClientAssertion: assertion.File(path), Metadata: &oauthclient.Metadata{Issuer: srv.Issuer, TokenEndpoint: srv.TokenURL}}); !errors.Is(err, oauthsafe.ErrConfig) {
		t.Fatalf("PrivateKey and ClientAssertion: %v, want ErrConfig", err)
	}
}

// signClientAssertion signs a client assertion of ClientPrivateKeyJWT for
// srv with the client's key (RFC 7523 §3), as a platform would: iat 60 s
// before its exp, exp life from now, a random jti.
func signClientAssertion(t *testing.T, srv *oauthtest.Server, life time.Duration) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: srv.ClientKey, KeyID: srv.ClientKeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	jti := make([]byte, 16)
	rand.Read(jti)
	exp := time.Now().Add(life)
	payload, err := json.Marshal(map[string]any{
		"iss": oauthtest.ClientPrivateKeyJWT, "sub": oauthtest.ClientPrivateKeyJWT, "aud": srv.Issuer,
		"jti": hex.EncodeToString(jti), "iat": exp.Add(-time.Minute).Unix(), "exp": exp.Unix(),
	})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

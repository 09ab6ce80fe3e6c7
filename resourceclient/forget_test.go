package resourceclient

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/oauthsafe/oauthsafe/internal/registration"
	"github.com/oauthsafe/oauthsafe/internal/storekey"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// TestForgetKeepsNewerRegistration (S28, S29): an invalid_client answered
// to a dynamically registered client forgets that registration, and only
// that one. When another request or process has meanwhile registered
// anew (and logged in with the new client, whose refresh token is stored
// under its client id), a late invalid_client of the old client must not
// delete the new registration: the next run would register a third
// client and find no refresh token, so the user would have to log in
// again.
func TestForgetKeepsNewerRegistration(t *testing.T) {
	ctx := context.Background()
	store := new(tokenstore.Memory)
	c, err := New(ctx, Config{Resource: "https://api.example/mcp", Store: store})
	if err != nil {
		t.Fatal(err)
	}
	const issuer = "https://as.example"
	key := storekey.Registration(issuer, c.redirectURL())
	put := func(id string) {
		b, _ := json.Marshal(registration.Record{V: 1, Issuer: issuer, RedirectURL: c.redirectURL(), ClientID: id, AuthMethod: "none"})
		if err := store.Update(ctx, key, func(ctx context.Context, tx tokenstore.Tx) error { return tx.Put(ctx, b) }); err != nil {
			t.Fatal(err)
		}
	}
	invalid := &oauthclient.AuthError{Endpoint: "token", StatusCode: 401, Code: "invalid_client"}
	old := &session{cl: &client{id: "old-client", kind: "dynamic", key: key}}

	// The registration the server no longer knows is forgotten.
	put("old-client")
	if !c.refused(ctx, old, invalid) {
		t.Fatal("invalid_client of a dynamic client: want refused")
	}
	if _, err := storedClient(ctx, store, issuer, c.redirectURL()); err == nil {
		t.Fatal("the refused registration is still stored")
	}

	// A newer registration, made meanwhile, is kept.
	put("new-client")
	c.refused(ctx, old, invalid)
	cr, err := storedClient(ctx, store, issuer, c.redirectURL())
	if err != nil || cr.ClientID != "new-client" {
		t.Fatalf("after a late invalid_client of the old client: %+v, %v; want new-client kept", cr, err)
	}
}

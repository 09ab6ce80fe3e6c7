package engine_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"golang.org/x/oauth2"
)

// A Source keeps the access token in memory and only the record (the
// rotated refresh token, the subject, the granted scopes) in the store. In
// an application the store is a keyring.Store or a vault, and the FetchFunc
// comes from oauthclient; here both are stand-ins.
func ExampleSource() {
	ctx := context.Background()
	store := &tokenstore.Memory{}
	key := tokenstore.Key("https://issuer.example", "my-client", "alice")
	err := engine.SaveRecord(ctx, store, key, &engine.Record{RefreshToken: "rt-1", Subject: "alice",
		Scopes: []string{"openid", "offline_access"}, Issuer: "https://issuer.example", ClientID: "my-client"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fetch := func(ctx context.Context, r *engine.Refresh) (*engine.Result, error) {
		if r.Record == nil || r.Record.RefreshToken != "rt-1" {
			return nil, fmt.Errorf("example server: invalid_grant: %w", tokenstore.ErrLoginRequired)
		}
		r.Rotated("rt-2") // handed over before the response is checked
		return &engine.Result{Token: &oauth2.Token{AccessToken: "at-2", Expiry: time.Now().Add(time.Hour)},
			Scopes: []string{"openid"}}, nil
	}
	src, err := engine.NewSource(engine.SourceConfig{Store: store, Key: key, Fetch: fetch}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	tok, err := src.Token()
	if err != nil {
		fmt.Println(err)
		return
	}
	rec, _ := engine.LoadRecord(ctx, store, key)
	fmt.Println("access token:", tok.AccessToken)
	fmt.Println("stored:", rec)
	fmt.Println("granted:", src.Scopes())

	// Logging out deletes the stored record (after revoking the token).
	err = tokenstore.Logout(ctx, tokenstore.LogoutConfig{Store: store, Key: key})
	_, err2 := engine.LoadRecord(ctx, store, key)
	fmt.Println("logout:", err, errors.Is(err2, tokenstore.ErrNotFound))
	// Output:
	// access token: at-2
	// stored: tokenstore.Record{iss="https://issuer.example", client_id="my-client", sub="alice", scope="openid", gen=1, refresh_token=redacted}
	// granted: [openid]
	// logout: <nil> true
}

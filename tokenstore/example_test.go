package tokenstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/oauthsafe/oauthsafe/tokenstore"
	"golang.org/x/oauth2"
)

// A Source keeps the access token in memory and only the (rotated) refresh
// token in the store. In an application the store is a Keyring and Refresh
// comes from oauthclient; here both are stand-ins.
func ExampleSource() {
	ctx := context.Background()
	store := &tokenstore.Memory{}
	key := tokenstore.Key("https://issuer.example", "my-client", "alice")
	if err := tokenstore.SaveRefreshToken(ctx, store, key, "rt-1"); err != nil {
		fmt.Println(err)
		return
	}
	lockDir, _ := os.MkdirTemp("", "example-locks")
	defer os.RemoveAll(lockDir)
	refresh := func(ctx context.Context, rt string) (*oauth2.Token, error) {
		if rt != "rt-1" {
			return nil, fmt.Errorf("example server: invalid_grant: %w", tokenstore.ErrLoginRequired)
		}
		return &oauth2.Token{AccessToken: "at-2", RefreshToken: "rt-2", Expiry: time.Now().Add(time.Hour)}, nil
	}
	src, err := tokenstore.NewSource(tokenstore.SourceConfig{Store: store, Key: key, Refresh: refresh, LockDir: lockDir}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	tok, err := src.Token()
	if err != nil {
		fmt.Println(err)
		return
	}
	stored, _ := tokenstore.LoadRefreshToken(ctx, store, key)
	fmt.Println("access token:", tok.AccessToken)
	fmt.Println("stored refresh token:", stored)

	// Logging out deletes the stored refresh token (after revoking it).
	err = tokenstore.Logout(ctx, tokenstore.LogoutConfig{Store: store, Key: key, LockDir: lockDir})
	_, err2 := tokenstore.LoadRefreshToken(ctx, store, key)
	fmt.Println("logout:", err, errors.Is(err2, tokenstore.ErrNotFound))
	// Output:
	// access token: at-2
	// stored refresh token: rt-2
	// logout: <nil> true
}

package tokenstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// storeLogin puts in store, under key, the record oauthclient's
// Client.TokenSource writes after a login (the engine's stored form:
// versioned JSON, one Store value). Programs never write it themselves;
// the examples do, to run without a provider.
func storeLogin(ctx context.Context, store tokenstore.Store, key, refreshToken string) {
	rec, err := json.Marshal(map[string]any{
		"v": 2, "refresh_token": refreshToken, "sub": "user-1234", "scope": []string{"openid", "offline_access"},
		"iss": "https://login.example.com", "client_id": "my-cli", "gen": 0,
	})
	if err != nil {
		log.Fatal(err)
	}
	err = store.Update(ctx, key, func(ctx context.Context, tx tokenstore.Tx) error {
		return tx.Put(ctx, rec)
	})
	if err != nil {
		log.Fatal(err)
	}
}

// A desktop or CLI tool finds its login again with a key derived from the
// issuer, the client id and the user's subject (Key), or a profile name
// before the first login (ProfileKey): hex SHA-256, the same in every run,
// revealing none of its parts.
func ExampleKey() {
	issuer, clientID := "https://login.example.com", "my-cli"
	k := tokenstore.Key(issuer, clientID, "user-1234")
	fmt.Println(k)
	fmt.Println(len(k), k == tokenstore.Key(issuer, clientID, "user-1234"))
	fmt.Println(tokenstore.ProfileKey(issuer, clientID, "user-1234") == k)
	fmt.Println(tokenstore.Key(issuer, clientID, "user-5678") == k)
	// Output:
	// f7eaffed273c150ac563ee1f5b91e1e1364b267dfb29ebeb175dc51ebfc65a72
	// 64 true
	// false
	// false
}

// Memory is the Store of one process (tests, a login that need not outlive
// the process). Every write is a transaction on one key, as the token
// engine makes it; Get outside a transaction is for status displays.
func ExampleMemory() {
	ctx := context.Background()
	store := new(tokenstore.Memory)
	key := tokenstore.ProfileKey("https://login.example.com", "my-cli", "default")
	_, err := store.Get(ctx, key)
	fmt.Println("nothing yet:", errors.Is(err, tokenstore.ErrNotFound))
	err = store.Update(ctx, key, func(ctx context.Context, tx tokenstore.Tx) error {
		if _, err := tx.Get(ctx); !errors.Is(err, tokenstore.ErrNotFound) {
			return err
		}
		return tx.Put(ctx, []byte("v1"))
	})
	if err != nil {
		log.Fatal(err)
	}
	v, err := store.Get(ctx, key)
	fmt.Printf("stored: %s %v\n", v, err)
	err = store.Update(ctx, key, func(ctx context.Context, tx tokenstore.Tx) error {
		return tx.Put(ctx, make([]byte, 1<<20+1)) // over 1 MiB
	})
	fmt.Println("too large:", errors.Is(err, tokenstore.ErrTooLarge))
	fmt.Println(store)
	// Output:
	// nothing yet: true
	// stored: v1 <nil>
	// too large: true
	// tokenstore.Memory{redacted}
}

// A CLI on a headless machine (no OS keyring) keeps its logins in an
// EncryptedFile it chose explicitly: scrypt and AES-256-GCM, a file of
// mode 0600 in a directory of mode 0700. The passphrase comes from a
// function (a prompt, a secrets manager); the wrong one is an error, never
// an empty store.
func ExampleEncryptedFile() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "tokens") // a real tool: under os.UserConfigDir()
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "oauthsafe", "tokens.enc")
	file := &tokenstore.EncryptedFile{
		Path:       path,
		Passphrase: func() ([]byte, error) { return []byte("correct horse battery staple"), nil },
	}
	key := tokenstore.ProfileKey("https://login.example.com", "my-cli", "default")
	storeLogin(ctx, file, key, "rt-0123456789abcdef")

	raw, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("mode:", fi.Mode().Perm())
	fmt.Println("token readable in the file:", bytes.Contains(raw, []byte("rt-0123456789abcdef")))

	wrong := &tokenstore.EncryptedFile{
		Path:       path,
		Passphrase: func() ([]byte, error) { return []byte("guess"), nil },
	}
	_, err = wrong.Get(ctx, key)
	fmt.Println("wrong passphrase:", errors.Is(err, tokenstore.ErrWrongPassphrase))
	_, err = file.Get(ctx, key)
	fmt.Println("right passphrase:", err)
	// Output:
	// mode: -rw-------
	// token readable in the file: false
	// wrong passphrase: true
	// right passphrase: <nil>
}

// A desktop or CLI tool's logout command: Logout revokes the stored refresh
// token at the server (Revoke is oauthclient's Client.Revoke in a real
// tool) and deletes the record in one transaction, so no refresh running
// at the same time writes it back. A failed revocation still deletes the
// record.
func ExampleLogout() {
	ctx := context.Background()
	store := new(tokenstore.Memory)
	key := tokenstore.Key("https://login.example.com", "my-cli", "user-1234")
	storeLogin(ctx, store, key, "rt-0123456789abcdef")

	err := tokenstore.Logout(ctx, tokenstore.LogoutConfig{
		Store: store,
		Key:   key,
		Revoke: func(ctx context.Context, refreshToken string) error {
			fmt.Printf("revoking a refresh token of %d characters\n", len(refreshToken))
			return nil
		},
	})
	fmt.Println("logged out:", err)
	_, err = store.Get(ctx, key)
	fmt.Println("deleted:", errors.Is(err, tokenstore.ErrNotFound))

	storeLogin(ctx, store, key, "rt-fedcba9876543210")
	err = tokenstore.Logout(ctx, tokenstore.LogoutConfig{
		Store: store,
		Key:   key,
		Revoke: func(context.Context, string) error {
			return errors.New("revocation endpoint unreachable")
		},
	})
	fmt.Println("revocation failed:", errors.Is(err, tokenstore.ErrRevocationFailed))
	_, err = store.Get(ctx, key)
	fmt.Println("deleted anyway:", errors.Is(err, tokenstore.ErrNotFound))
	// Output:
	// revoking a refresh token of 19 characters
	// logged out: <nil>
	// deleted: true
	// revocation failed: true
	// deleted anyway: true
}

// A program that audits its logins (oauthclient's
// TokenSourceConfig.OnRecordChange hands it each changed Record) can print
// or log a Record as it likes: no verb, slog handler or JSON encoding
// shows the refresh token.
func ExampleRecord() {
	rec := tokenstore.Record{
		RefreshToken: "rt-0123456789abcdef",
		Subject:      "user-1234",
		Scopes:       []string{"openid", "offline_access"},
		Issuer:       "https://login.example.com",
		ClientID:     "my-cli",
		Generation:   3,
	}
	fmt.Println(rec)
	fmt.Printf("%#v\n", rec)
	j, err := json.Marshal(rec)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(j))
	// Output:
	// tokenstore.Record{iss="https://login.example.com", client_id="my-cli", sub="user-1234", scope="openid offline_access", gen=3, refresh_token=redacted}
	// tokenstore.Record{iss="https://login.example.com", client_id="my-cli", sub="user-1234", scope="openid offline_access", gen=3, refresh_token=redacted}
	// "tokenstore.Record{iss=\"https://login.example.com\", client_id=\"my-cli\", sub=\"user-1234\", scope=\"openid offline_access\", gen=3, refresh_token=redacted}"
}

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/tokenstore/keyring"
	"golang.org/x/term"
)

// This file chooses and checks where a profile's refresh token is kept:
// the OS keyring (the default) or an encrypted file (an explicit choice,
// for machines without a keyring). There is never a silent fallback (S13).

const (
	storeKeyring = "keyring"
	storeFile    = "file"
	// envFilePassphrase holds the passphrase of the encrypted file store
	// (otherwise it is asked on the terminal, with echo off). Never a flag.
	envFilePassphrase = "OAUTHSAFE_FILE_PASSPHRASE"
)

// errNeedPassphrase: the file store needs a passphrase and there is neither
// the environment variable nor a terminal to ask on.
var errNeedPassphrase = errors.New("the encrypted file store needs a passphrase and none was given")

// storeKind is the profile's store kind, "keyring" when unset.
func (p *profile) storeKind() string {
	if p.Store == "" {
		return storeKeyring
	}
	return p.Store
}

// defaultStoreFile is the encrypted file next to the profiles.
func defaultStoreFile() (string, error) {
	d, err := profileDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "tokens.enc"), nil
}

// openStore opens the profile's store. interactive allows asking for the
// file store's passphrase on the terminal.
func openStore(e *env, p *profile, interactive bool) (tokenstore.Store, error) {
	switch p.storeKind() {
	case storeKeyring:
		// Say at once, in words, why the keyring cannot be used: no bus, no
		// Secret Service, or a locked keyring where no desktop can prompt.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := keyring.Check(ctx); err != nil && !(keyringReason(err) == "locked" && browserUsable(e)) {
			return nil, err
		}
		return &keyring.Store{Service: keyringService}, nil
	case storeFile:
		path := p.StoreFile
		if path == "" {
			var err error
			if path, err = defaultStoreFile(); err != nil {
				return nil, err
			}
		}
		pass, err := passphrase(e, interactive)
		if err != nil {
			return nil, err
		}
		return &tokenstore.EncryptedFile{Path: path, Passphrase: func() ([]byte, error) { return []byte(pass), nil }}, nil
	default:
		return nil, fmt.Errorf("unknown store %q in the profile (keyring or file)", clean(p.Store))
	}
}

// passphrase reads the file store's passphrase from the environment, or
// from the terminal with echo off.
func passphrase(e *env, interactive bool) (string, error) {
	if v := e.getenv(envFilePassphrase); v != "" {
		return v, nil
	}
	f, ok := e.stdin.(*os.File)
	if !interactive || !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errNeedPassphrase
	}
	fmt.Fprint(e.stderr, "Passphrase of the encrypted token file: ")
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(e.stderr)
	if err != nil {
		return "", fmt.Errorf("reading the passphrase: %w", err)
	}
	if len(b) == 0 {
		return "", errors.New("empty passphrase")
	}
	return string(b), nil
}

// probeStore checks that a store works by writing, reading back and
// deleting a throwaway record under a probe key, in one Store.Update (so
// the store's lock is exercised too), so that `login` fails before the
// browser opens rather than after the user signed in.
func probeStore(ctx context.Context, s tokenstore.Store) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var r [16]byte
	rand.Read(r[:])
	key := "oauthsafe-probe-" + hex.EncodeToString(r[:])
	want := []byte("oauthsafe store probe " + key)
	return s.Update(ctx, key, func(ctx context.Context, tx tokenstore.Tx) error {
		if err := tx.Put(ctx, want); err != nil {
			return err
		}
		got, err := tx.Get(ctx)
		if derr := tx.Delete(ctx); err == nil {
			err = derr
		}
		if err == nil && !bytes.Equal(got, want) {
			err = errors.New("the store read back another value than it was given")
		}
		return err
	})
}

// storeAdvice says how to fix a store that failed its probe.
func storeAdvice(kind string, err error) string {
	switch {
	case kind == storeKeyring:
		file := "log in with --store file to keep the refresh token in a passphrase-encrypted file (passphrase from " + envFilePassphrase + " or a prompt)"
		switch {
		case keyringReason(err) == "no-bus":
			return "there is no D-Bus session here (SSH, a container): " + file + ", or run in a desktop session"
		case keyringReason(err) == "no-secret-service":
			return "start a keyring daemon (gnome-keyring-daemon --start --components=secrets, or KeePassXC with its Secret Service) or " + file
		case keyringReason(err) == "locked":
			return "unlock the keyring (log in to the desktop, or gnome-keyring-daemon --unlock with its password on stdin) or " + file
		}
		return "start a keyring daemon (for example gnome-keyring-daemon --unlock in a D-Bus session), or " + file
	case errors.Is(err, tokenstore.ErrWrongPassphrase):
		return "the passphrase does not open the existing encrypted token file: use the passphrase it was created with, or choose another file with --store-file"
	case errors.Is(err, tokenstore.ErrInsecurePermissions):
		return "the encrypted token file or its directory is accessible to other users: make the file 0600 and the directory 0700, owned by you"
	case errors.Is(err, errNeedPassphrase):
		return "set " + envFilePassphrase + " or run login on a terminal to type the passphrase"
	}
	return "choose another store with --store keyring|file"
}

// profileSource is a profile's refresh lifecycle: the client (with cached
// metadata), the store and the key. The access token stays in the returned
// source's memory.
func profileSource(ctx context.Context, e *env, name string, p *profile) (*oauthclient.TokenSource, error) {
	store, err := openStore(e, p, e.stdin != nil)
	if err != nil {
		return nil, err
	}
	c, err := cachedClient(ctx, e, name, p)
	if err != nil {
		return nil, err
	}
	return c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: store, Key: p.storeKey(name), Resource: p.Resources}, nil)
}

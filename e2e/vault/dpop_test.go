package vault_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"os"
	"sync"
	"testing"

	"github.com/oauthsafe/oauthsafe/tokenstore"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore/sqlstore"
)

// TestVaultDPoPKeySealed (S26, S27): a DPoP login's record in the vault
// holds the private key with the refresh token, sealed with it: neither
// the SQLite files nor a pg_dump hold any 16-byte window of the key (DER
// or base64). A user pool of another Client, configured without DPoP and
// sharing only the vault, refreshes with the stored key (the OP's binding
// check passes, the proof is the login key's); with the key dropped from
// the record, the bound refresh token needs a new login.
func TestVaultDPoPKeySealed(t *testing.T) {
	srv, err := oauthtest.Start(oauthtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var mu sync.Mutex
	var authorizeJKT, refreshJKT string
	srv.SetHook(func(r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Query().Has("code_challenge") {
			authorizeJKT = r.URL.Query().Get("dpop_jkt")
		}
		if r.URL.Path == mustPath(srv.TokenURL) && r.FormValue("grant_type") == "refresh_token" {
			refreshJKT = proofJKT(r.Header.Get("DPoP"))
		}
	})
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			c, err := oauthclient.New(ctx, oauthclient.Config{
				Issuer: srv.Issuer, ClientID: oauthtest.ClientNative, RedirectURL: "http://127.0.0.1:41000/callback",
				Scopes: []string{"openid", "offline_access", oauthtest.ScopeAPIRead},
				HTTP:   strictnet.Config{RootCAs: srv.RootCAs()}, DPoP: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			p, authURL, err := c.Start(ctx, oauthclient.StartOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cb, err := srv.Login(ctx, authURL, "alice")
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(cb)
			toks, err := c.Exchange(ctx, p, u.Query())
			if err != nil || toks.OAuth2Token().TokenType != "DPoP" {
				t.Fatalf("DPoP login: %v", err)
			}
			st := b.store(t, sqlstore.Config{})
			if _, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: st, Key: fleetKey}, toks); err != nil {
				t.Fatal(err)
			}
			rec, err := engine.LoadRecord(ctx, st, fleetKey)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			loginJKT := authorizeJKT
			mu.Unlock()
			der := rec.DPoPKey.PKCS8()
			if loginJKT == "" || keyJKT(t, der) != loginJKT {
				t.Fatal("the vault record does not hold the login's DPoP key")
			}

			var dump []byte
			if b.pg != nil {
				if dump, err = b.pg.Dump(b.pgDB); err != nil {
					t.Fatal(err)
				}
			} else {
				for _, suffix := range []string{"", "-wal", "-shm"} {
					f, _ := os.ReadFile(b.file + suffix)
					dump = append(dump, f...)
				}
			}
			for _, s := range [][]byte{der, []byte(base64.StdEncoding.EncodeToString(der))} {
				for i := 0; i+16 <= len(s); i += 8 {
					if bytes.Contains(dump, s[i:i+16]) {
						t.Fatalf("the dump holds DPoP key bytes at offset %d", i)
					}
				}
			}

			// Another Client, DPoP off, sharing only the vault.
			other, err := webClient(ctx, srv.Issuer, srv.RootCAs())
			if err != nil {
				t.Fatal(err)
			}
			pool, err := other.UserPool(oauthclient.TokenSourceConfig{Store: st})
			if err != nil {
				t.Fatal(err)
			}
			src, err := pool.Source(ctx, fleetKey)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := src.Token()
			mu.Lock()
			got := refreshJKT
			mu.Unlock()
			if err != nil || tok.TokenType != "DPoP" || got != loginJKT {
				t.Fatalf("pool refresh: %v, proof by %q, want %q", err, got, loginJKT)
			}

			rec, _ = engine.LoadRecord(ctx, st, fleetKey)
			rec.DPoPKey = engine.PrivateKey{}
			if err := engine.SaveRecord(ctx, st, fleetKey, rec); err != nil {
				t.Fatal(err)
			}
			fresh, err := other.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: st, Key: fleetKey}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fresh.Token(); !errors.Is(err, tokenstore.ErrLoginRequired) {
				t.Fatalf("refresh without the key: %v", err)
			}
		})
	}
}

func mustPath(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		panic(err)
	}
	return p.Path
}

// proofJKT is the RFC 7638 thumbprint of a DPoP proof's jwk ("" without one).
func proofJKT(proof string) string {
	jws, err := jose.ParseSignedCompact(proof, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || jws.Signatures[0].Protected.JSONWebKey == nil {
		return ""
	}
	tp, err := jws.Signatures[0].Protected.JSONWebKey.Thumbprint(crypto.SHA256)
	if err != nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// keyJKT is the thumbprint of a PKCS #8 private key's public half.
func keyJKT(t *testing.T, der []byte) string {
	t.Helper()
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	pub := (&jose.JSONWebKey{Key: k}).Public()
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

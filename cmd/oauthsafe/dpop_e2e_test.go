package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/tokenstore/keyring"
)

// thumbprint is the RFC 7638 thumbprint of a public key, base64url.
func thumbprint(t *testing.T, key any) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: key}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// recordJKT is the thumbprint of the DPoP key in a stored record.
func recordJKT(t *testing.T, rec *engine.Record) string {
	t.Helper()
	if rec.DPoPKey.IsZero() {
		return ""
	}
	k, err := x509.ParsePKCS8PrivateKey(rec.DPoPKey.PKCS8())
	if err != nil {
		t.Fatal(err)
	}
	pub := (&jose.JSONWebKey{Key: k}).Public()
	return thumbprint(t, pub.Key)
}

// TestCLILoginDPoP: login --dpop binds the tokens to a key that goes into
// the chosen store's record with the refresh token (the real keyring, or
// --store file), never into the profile; the profile remembers the choice
// (a re-login from the saved profile keeps it); token, without and through
// the agent, refreshes in new processes with a proof of the stored key;
// status shows the binding; the printed token is refused as Bearer, and
// exec-credential and git-credential refuse the profile.
func TestCLILoginDPoP(t *testing.T) {
	const life = 3 * time.Second
	c := newCLI(t, oauthtest.Options{AccessTokenLifetime: life})
	var mu sync.Mutex
	var authorizeJKT []string
	var refreshJKT []string
	c.srv.SetHook(func(r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.URL.Path == pathOf(t, c.srv.AuthURL) && r.URL.Query().Has("code_challenge"):
			authorizeJKT = append(authorizeJKT, r.URL.Query().Get("dpop_jkt"))
		case r.URL.Path == pathOf(t, c.srv.TokenURL) && r.FormValue("grant_type") == "refresh_token":
			jkt := ""
			if p := r.Header.Get("DPoP"); p != "" {
				if jws, err := jose.ParseSignedCompact(p, []jose.SignatureAlgorithm{jose.ES256}); err == nil {
					jkt = thumbprint(t, jws.Signatures[0].Protected.JSONWebKey.Key)
				}
			}
			refreshJKT = append(refreshJKT, jkt)
		}
	})
	last := func(s *[]string) string {
		mu.Lock()
		defer mu.Unlock()
		if len(*s) == 0 {
			return ""
		}
		return (*s)[len(*s)-1]
	}
	tokenJSON := func(args ...string) map[string]string {
		t.Helper()
		code, stdout, stderr := c.run(append([]string{"token", "--output", "json"}, args...)...)
		var tj map[string]string
		if code != exitOK || json.Unmarshal([]byte(stdout), &tj) != nil {
			t.Fatalf("token %v: exit %d\n%s", args, code, stderr)
		}
		return tj
	}

	mustLogin(t, c, "--dpop")
	loginJKT := last(&authorizeJKT)
	if loginJKT == "" {
		t.Fatal("login --dpop sent no dpop_jkt")
	}
	profileFile := filepath.Join(c.kr.Home, ".config", "oauthsafe", "default.json")
	pb, err := os.ReadFile(profileFile)
	if err != nil || !strings.Contains(string(pb), `"dpop": true`) || strings.Contains(string(pb), "pkcs8") {
		t.Fatalf("profile %s: %v\n%s", profileFile, err, pb)
	}
	key := tokenstore.Key(c.srv.Issuer, oauthtest.ClientNative, oauthtest.Subject("alice"))
	rec, err := engine.LoadRecord(context.Background(), &keyring.Store{Service: keyringService}, key)
	if err != nil || recordJKT(t, rec) != loginJKT {
		t.Fatalf("the keyring record does not hold the login's DPoP key (%v)", err)
	}
	if code, st := c.statusJSON(); code != exitOK || st["dpop"] != true {
		t.Fatalf("status: %d %v", code, st)
	}
	if _, stdout, _ := c.run("status"); !strings.Contains(stdout, "DPoP:") {
		t.Fatalf("status text:\n%s", stdout)
	}

	// New processes refresh with the stored key: directly, then through
	// the agent.
	for _, args := range [][]string{{"--no-agent"}, nil} {
		time.Sleep(life)
		before := len(refreshJKT)
		tj := tokenJSON(args...)
		if tj["token_type"] != "DPoP" || len(refreshJKT) == before || last(&refreshJKT) != loginJKT {
			t.Fatalf("token %v: type %q, refresh proofs %q, want by %q", args, tj["token_type"], refreshJKT, loginJKT)
		}
		if c.userinfo(tj["access_token"]) != http.StatusUnauthorized {
			t.Fatal("the DPoP-bound token was accepted as Bearer")
		}
	}
	if code, stdout, stderr := c.run("token", "--output", "exec-credential"); code != exitError || stdout != "" || !strings.Contains(stderr, "DPoP") {
		t.Fatalf("exec-credential with DPoP: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	if code, stdout, stderr := c.runIn("protocol=https\nhost=git.example.com\n\n", "git-credential", "--allow", "https://git.example.com", "get"); code != exitError || stdout != "" || !strings.Contains(stderr, "DPoP") {
		t.Fatalf("git-credential with DPoP: exit %d stdout %q stderr %q", code, stdout, stderr)
	}

	// A re-login from the saved profile (no --issuer) keeps DPoP.
	if code, _, stderr := c.loginArgs("login", "--no-browser"); code != exitOK {
		t.Fatalf("re-login: %d\n%s", code, stderr)
	}
	if j := last(&authorizeJKT); j == "" || j == loginJKT {
		t.Fatalf("re-login from the profile: dpop_jkt %q (a new key wanted)", j)
	}

	// --store file: the key is sealed in the encrypted file with the
	// refresh token, and a new process refreshes with it.
	c.setenv(envFilePassphrase + "=correct horse battery staple")
	mustLogin(t, c, "--dpop", "--store", "file", "--profile", "file")
	fileJKT := last(&authorizeJKT)
	rec, err = engine.LoadRecord(context.Background(), &tokenstore.EncryptedFile{
		Path:       filepath.Join(c.kr.Home, ".config", "oauthsafe", "tokens.enc"),
		Passphrase: func() ([]byte, error) { return []byte("correct horse battery staple"), nil },
	}, key)
	if err != nil || recordJKT(t, rec) != fileJKT {
		t.Fatalf("the file record does not hold the login's DPoP key (%v)", err)
	}
	raw, _ := os.ReadFile(filepath.Join(c.kr.Home, ".config", "oauthsafe", "tokens.enc"))
	if der := rec.DPoPKey.PKCS8(); strings.Contains(string(raw), string(der)) || strings.Contains(string(raw), base64.StdEncoding.EncodeToString(der)) {
		t.Fatal("the encrypted file holds the DPoP key in the clear")
	}
	time.Sleep(life)
	if tj := tokenJSON("--no-agent", "--profile", "file"); tj["token_type"] != "DPoP" || last(&refreshJKT) != fileJKT {
		t.Fatalf("file store refresh: type %q, proof by %q, want %q", tj["token_type"], last(&refreshJKT), fileJKT)
	}
}

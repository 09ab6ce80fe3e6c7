//go:build unix

package oauthclient_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/oauthsafe/oauthsafe/e2e/internal/flow"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/validate"
)

func writeCA(t *testing.T, srv *oauthtest.Server, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, srv.CACertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRootsFromFileSharedOnce: the provider's CA, read once from a file by
// strictnet.RootsFromFile (the file is deleted right after), is set once
// in one strictnet.Config that serves oauthclient (discovery, a login, a
// refresh), apiclient (an API call) and validate (the JWKS behind an ID
// token's signature). A CA file others could write, a FIFO, a directory or
// a file with no certificate is refused before it is used.
func TestRootsFromFileSharedOnce(t *testing.T) {
	ctx := context.Background()
	srv, err := oauthtest.Start(oauthtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	caFile := writeCA(t, srv, 0o644)
	roots, err := strictnet.RootsFromFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(caFile); err != nil { // nothing may read it again
		t.Fatal(err)
	}
	netcfg := strictnet.Config{RootCAs: roots} // the one value, set once

	c, err := oauthclient.New(ctx, oauthclient.Config{Issuer: srv.Issuer, ClientID: oauthtest.ClientNative,
		RedirectURL: "http://127.0.0.1:41000/callback", Scopes: []string{"openid", "offline_access"}, HTTP: netcfg})
	if err != nil {
		t.Fatalf("oauthclient with the shared roots: %v", err)
	}
	toks, _ := flow.Login(t, srv, c, oauthclient.StartOptions{}, "alice")
	src, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{}, toks)
	if err != nil {
		t.Fatal(err)
	}
	api, err := apiclient.New(src, apiclient.Config{AllowedOrigins: []string{srv.Issuer}, HTTP: netcfg})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := api.Get(srv.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatalf("apiclient with the shared roots: %v", err)
	}
	resp.Body.Close()
	hc, err := strictnet.NewClient(netcfg)
	if err != nil {
		t.Fatal(err)
	}
	md := c.Metadata()
	keys, err := validate.NewJWKS(validate.JWKSConfig{URL: md.JWKSURI, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.VerifySignature(ctx, toks.RawIDToken()); err != nil {
		t.Fatalf("validate with the shared roots: %v", err)
	}

	// The trust-file checks.
	for _, mode := range []os.FileMode{0o664, 0o666, 0o646} {
		if _, err := strictnet.RootsFromFile(writeCA(t, srv, mode)); !errors.Is(err, strictnet.ErrPolicy) {
			t.Errorf("a CA file of mode %04o: %v, want ErrPolicy", mode, err)
		}
	}
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.pem")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.pem")
	os.WriteFile(empty, []byte("no certificate"), 0o644)
	for name, p := range map[string]string{"fifo": fifo, "directory": dir} {
		if _, err := strictnet.RootsFromFile(p); !errors.Is(err, strictnet.ErrPolicy) {
			t.Errorf("%s: %v, want ErrPolicy", name, err)
		}
	}
	if _, err := strictnet.RootsFromFile(empty); err == nil || !strings.Contains(err.Error(), "no PEM certificate") || errors.Is(err, strictnet.ErrPolicy) {
		t.Errorf("no certificate: %v, want a non-policy error saying so", err)
	}
	if _, err := strictnet.RootsFromFile(filepath.Join(dir, "missing.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}

// TestLibraryErrorsCarryHints: the errors a person can act on carry a
// hint, reached with strictnet.Hint (or errors.As to a Hint method), as
// the CLI's messages do, while the sentinels and causes stay matchable:
//   - an untrusted certificate, from oauthclient, apiclient and validate
//     alike: load the CA with strictnet.RootsFromFile;
//   - a refused connection: nothing listens at host:port;
//   - an issuer that differs only by a trailing slash: the exact value;
//     another issuer: how to find the right one.
//
// No hint or error holds the client secret (S19) or raw server text.
func TestLibraryErrorsCarryHints(t *testing.T) {
	ctx := context.Background()
	srv, err := oauthtest.Start(oauthtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const secretValue = "s19-client-secret-never-in-a-hint"
	t.Setenv("HINT_TEST_SECRET", secretValue)
	sec, err := secret.FromEnv("HINT_TEST_SECRET")
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, what string, err error, want ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		h := strictnet.Hint(err)
		for _, w := range want {
			if !strings.Contains(h, w) {
				t.Errorf("%s: hint %q lacks %q (error: %v)", what, h, w, err)
			}
		}
		if strings.Contains(h, secretValue) || strings.Contains(err.Error(), secretValue) {
			t.Errorf("%s: the secret is in the error or hint", what)
		}
		for _, r := range h {
			if r < 0x20 || r == 0x7f {
				t.Errorf("%s: control character in the hint", what)
			}
		}
	}
	unknownCA := func(t *testing.T, what string, err error) {
		t.Helper()
		var ua x509.UnknownAuthorityError
		if !errors.As(err, &ua) {
			t.Errorf("%s: %v, want a reachable x509.UnknownAuthorityError", what, err)
		}
		var ce *strictnet.ConnError
		if !errors.As(err, &ce) {
			t.Errorf("%s: no *strictnet.ConnError", what)
		}
		check(t, what, err, "RootsFromFile", "RootCAs", strings.TrimPrefix(srv.Issuer, "https://"))
	}

	t.Run("untrusted CA", func(t *testing.T) {
		_, err := oauthclient.New(ctx, oauthclient.Config{Issuer: srv.Issuer, ClientID: oauthtest.ClientService, ClientSecret: sec})
		unknownCA(t, "oauthclient", err)

		t.Setenv("HINT_TEST_SERVICE_SECRET", oauthtest.ServiceSecret)
		svc, err := secret.FromEnv("HINT_TEST_SERVICE_SECRET")
		if err != nil {
			t.Fatal(err)
		}
		trusted, err := oauthclient.New(ctx, oauthclient.Config{Issuer: srv.Issuer, ClientID: oauthtest.ClientService, ClientSecret: svc,
			HTTP: strictnet.Config{RootCAs: srv.RootCAs()}})
		if err != nil {
			t.Fatal(err)
		}
		api, err := apiclient.New(trusted.ClientCredentials(oauthclient.GrantOptions{}), apiclient.Config{AllowedOrigins: []string{srv.Issuer}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = api.Get(srv.Issuer + "/.well-known/openid-configuration")
		unknownCA(t, "apiclient", err)

		hc, _ := strictnet.NewClient(strictnet.Config{})
		keys, err := validate.NewJWKS(validate.JWKSConfig{URL: trusted.Metadata().JWKSURI, HTTPClient: hc})
		if err != nil {
			t.Fatal(err)
		}
		_, err = keys.VerifySignature(ctx, "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.e30.c2ln")
		unknownCA(t, "validate", err)
	})

	t.Run("refused connection", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		_, err = oauthclient.New(ctx, oauthclient.Config{Issuer: "https://" + addr, ClientID: oauthtest.ClientService, ClientSecret: sec})
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("the cause is not reachable: %v", err)
		}
		check(t, "refused", err, "nothing accepts connections at "+addr)
	})

	t.Run("issuer mismatch", func(t *testing.T) {
		_, err := oauthclient.New(ctx, oauthclient.Config{Issuer: srv.Issuer + "/", ClientID: oauthtest.ClientService, ClientSecret: sec,
			HTTP: strictnet.Config{RootCAs: srv.RootCAs()}})
		if !errors.Is(err, oauthclient.ErrIssuerMismatch) {
			t.Fatalf("%v, want ErrIssuerMismatch", err)
		}
		check(t, "trailing slash", err, "trailing slash", `"`+srv.Issuer+`"`)
	})
}

// TestPrivateKeyFromFileSignsAtProvider: a private_key_jwt key written as
// PKCS #8 PEM to a 0600 file, loaded with secret.PrivateKeyFromFile (with
// the CA from strictnet.RootsFromFile), authenticates a client credentials
// grant at the real provider; the same file at 0644 is refused.
func TestPrivateKeyFromFileSignsAtProvider(t *testing.T) {
	ctx := context.Background()
	srv, err := oauthtest.Start(oauthtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	der, err := x509.MarshalPKCS8PrivateKey(srv.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "client-key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := secret.PrivateKeyFromFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := strictnet.RootsFromFile(writeCA(t, srv, 0o644))
	if err != nil {
		t.Fatal(err)
	}
	c, err := oauthclient.New(ctx, oauthclient.Config{Issuer: srv.Issuer, ClientID: oauthtest.ClientPrivateKeyJWT,
		PrivateKey: key, KeyID: srv.ClientKeyID, HTTP: strictnet.Config{RootCAs: roots}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ClientCredentials(oauthclient.GrantOptions{}).Token(); err != nil {
		t.Fatalf("the loaded key did not authenticate: %v", err)
	}
	os.Chmod(keyFile, 0o644)
	if _, err := secret.PrivateKeyFromFile(keyFile); !errors.Is(err, strictnet.ErrPolicy) {
		t.Fatalf("a 0644 key file: %v", err)
	}
}

package machine_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/assertion"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// TestAssertionFromRotatingFile: a workload's token file is read again
// when the platform rotates it, so the JWT-bearer grant presents the new
// assertion; an expired one in the file is refused before anything is
// sent (S31); a file others can read is refused like a secret file.
func TestAssertionFromRotatingFile(t *testing.T) {
	ctx := context.Background()
	srv := start(t, oauthtest.Options{})
	wl, err := srv.NewWorkloadIssuer("https://cluster.example/workloads")
	if err != nil {
		t.Fatal(err)
	}
	sign := func(sub string, life time.Duration) string {
		t.Helper()
		tok, err := wl.Sign(sub, srv.Issuer, life)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	rec := record(t, srv)
	path := filepath.Join(t.TempDir(), "token")
	first := sign("system:serviceaccount:shop:orders", time.Hour)
	writeSecretFile(t, path, first)

	c := newClient(t, srv, oauthclient.Config{ClientID: oauthtest.ClientNative})
	src := c.JWTBearer(assertion.File(path), oauthclient.GrantOptions{Scopes: []string{oauthtest.ScopeAPIRead}})
	tok, err := src.TokenContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	form, _ := rec.last()
	if got := form["assertion"]; len(got) != 1 || got[0] != first || form["grant_type"][0] != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		t.Fatalf("first request: grant %v, assertion is not the file's", form["grant_type"])
	}

	// The platform rotates the token: the next token request carries the new one.
	second := sign("system:serviceaccount:shop:orders", time.Hour)
	writeSecretFile(t, path, second)
	src.Invalidate(tok)
	if tok, err = src.TokenContext(ctx); err != nil {
		t.Fatal(err)
	}
	form, _ = rec.last()
	if got := form["assertion"]; len(got) != 1 || got[0] != second {
		t.Fatal("after the rotation the old assertion was sent")
	}

	// An expired token in the file is refused before it is sent.
	writeSecretFile(t, path, sign("system:serviceaccount:shop:orders", -time.Minute))
	src.Invalidate(tok)
	before := srv.TokenRequests("urn:ietf:params:oauth:grant-type:jwt-bearer")
	_, err = src.TokenContext(ctx)
	if !errors.Is(err, assertion.ErrExpired) {
		t.Fatalf("expired assertion: %v, want assertion.ErrExpired", err)
	}
	if n := srv.TokenRequests("urn:ietf:params:oauth:grant-type:jwt-bearer"); n != before {
		t.Fatalf("the expired assertion was sent (%d requests, want %d)", n, before)
	}
	if strings.Contains(err.Error(), second) || strings.Contains(err.Error(), strings.Split(first, ".")[1]) {
		t.Fatal("the error holds an assertion")
	}

	// A token file others can read is refused (the secret-file checks).
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = assertion.File(path).Assertion(ctx, srv.Issuer)
	if !errors.Is(err, strictnet.ErrPolicy) || !errors.Is(err, assertion.ErrSource) {
		t.Fatalf("0644 token file: %v, want ErrPolicy and ErrSource", err)
	}
}

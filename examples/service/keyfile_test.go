package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/oauthtest/demoapi"
)

// TestKeyFileAndCAFile: with -key-file the service authenticates with
// private_key_jwt at the real server, and one -ca-file bundle (the
// server's CA and the API's certificate) serves both connections.
func TestKeyFileAndCAFile(t *testing.T) {
	srv, err := oauthtest.Start(oauthtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	checker, err := demoapi.New(context.Background(), srv)
	if err != nil {
		t.Fatal(err)
	}
	apiSrv := httptest.NewTLSServer(checker.Require(oauthtest.ScopeAPIRead, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"reports":3}`))
	}))
	defer apiSrv.Close()
	dir := t.TempDir()
	bundle := append(append([]byte{}, srv.CACertPEM...), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: apiSrv.Certificate().Raw})...)
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, bundle, 0o644)
	der, _ := x509.MarshalPKCS8PrivateKey(srv.ClientKey)
	keyFile := filepath.Join(dir, "key.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := []string{"-issuer", srv.Issuer, "-client-id", oauthtest.ClientPrivateKeyJWT, "-scope", oauthtest.ScopeAPIRead,
		"-key-file", keyFile, "-key-id", srv.ClientKeyID, "-ca-file", caFile, "-api", apiSrv.URL + "/v1/reports"}
	var out, errb bytes.Buffer
	if err := run(ctx, args, &out, &errb); err != nil {
		t.Fatalf("run: %v\n%s", err, &errb)
	}
	if n := strings.Count(out.String(), "-> 200 OK"); n != 2 {
		t.Fatalf("want 2 calls, got:\n%s", &out)
	}
	os.Chmod(keyFile, 0o644)
	if err := run(ctx, args, &out, &errb); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Fatalf("a 0644 key file: %v", err)
	}
}

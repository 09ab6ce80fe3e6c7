package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/oauthtest/demoapi"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/validate"
)

// dpopProof makes an RFC 9449 proof with key for one request, as a
// caller that holds the key does.
func dpopProof(t *testing.T, key *ecdsa.PrivateKey, method, u, token string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	ath := sha256.Sum256([]byte(token))
	claims, _ := json.Marshal(map[string]any{
		"jti": fmt.Sprint(time.Now().UnixNano()), "htm": method, "htu": u, "iat": time.Now().Unix(),
		"ath": base64.RawURLEncoding.EncodeToString(ath[:]),
	})
	jws, err := signer.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	p, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCLIClientCredentialsDPoP: `token --client-credentials --dpop` gets a
// DPoP-bound token (token_type DPoP, cnf.jkt the thumbprint of the key
// that proved the token request, the server's nonce taken with one retry)
// and prints only the token; with --dpop-key-file the key is the
// caller's, who calls the demo API with the token and a proof of it (the
// API refuses the same token as a bearer token); without --dpop the token
// stays a bearer token.
func TestCLIClientCredentialsDPoP(t *testing.T) {
	ctx := context.Background()
	c := newCLI(t, oauthtest.Options{DPoPNonce: true})
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(oauthtest.ServiceSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var proofJKT []string // thumbprint of each client_credentials proof ("" without one)
	c.srv.SetHook(func(r *http.Request) {
		if r.URL.Path != pathOf(t, c.srv.TokenURL) || r.FormValue("grant_type") != "client_credentials" {
			return
		}
		jkt := ""
		if p := r.Header.Get("DPoP"); p != "" {
			if jws, err := jose.ParseSignedCompact(p, []jose.SignatureAlgorithm{jose.ES256}); err == nil {
				jkt = thumbprint(t, jws.Signatures[0].Protected.JSONWebKey.Key)
			}
		}
		mu.Lock()
		proofJKT = append(proofJKT, jkt)
		mu.Unlock()
	})
	cc := []string{"token", "--client-credentials", "--issuer", c.srv.Issuer, "--client-id", oauthtest.ClientService,
		"--client-secret-file", secretFile, "--scope", oauthtest.ScopeAPIRead, "--ca-file", c.ca}

	// The demo API, and introspection as the resource server sees it.
	demo, err := demoapi.New(ctx, c.srv)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/invoices", demo.Require(oauthtest.ScopeAPIRead, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `[]`)
	}))
	api := httptest.NewTLSServer(mux)
	t.Cleanup(api.Close)
	callAPI := func(scheme, token, proof string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, api.URL+"/v1/invoices", nil)
		req.Header.Set("Authorization", scheme+" "+token)
		if proof != "" {
			req.Header.Set("DPoP", proof)
		}
		resp, err := api.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	rsSecret, err := secret.FromReader(strings.NewReader(oauthtest.ResourceSecret))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := oauthclient.New(ctx, oauthclient.Config{Issuer: c.srv.Issuer, ClientID: oauthtest.ClientResource, ClientSecret: rsSecret,
		HTTP: strictnet.Config{RootCAs: c.srv.RootCAs()}})
	if err != nil {
		t.Fatal(err)
	}
	in, err := rs.Introspector(validate.IntrospectionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cnfJKT := func(token string) string {
		t.Helper()
		at, err := in.Verify(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		var cl struct {
			Cnf struct {
				JKT string `json:"jkt"`
			} `json:"cnf"`
		}
		if err := at.Claims(&cl); err != nil {
			t.Fatal(err)
		}
		return cl.Cnf.JKT
	}

	// --dpop: a key in the process's memory only.
	code, stdout, stderr := c.run(append(cc, "--dpop", "--output", "json")...)
	var tj map[string]string
	if code != exitOK || json.Unmarshal([]byte(stdout), &tj) != nil {
		t.Fatalf("token --client-credentials --dpop: exit %d\n%s", code, stderr)
	}
	mu.Lock()
	proofs := append([]string(nil), proofJKT...)
	mu.Unlock()
	if len(proofs) != 2 || proofs[0] == "" || proofs[1] != proofs[0] {
		t.Fatalf("token requests proven by %q: want a proof and one nonce retry with the same key", proofs)
	}
	if tj["token_type"] != "DPoP" || cnfJKT(tj["access_token"]) != proofs[0] {
		t.Fatalf("token_type %q; cnf.jkt is not the thumbprint of the proof key", tj["token_type"])
	}
	if callAPI("Bearer", tj["access_token"], "") != http.StatusUnauthorized {
		t.Fatal("the DPoP-bound token was accepted as a bearer token")
	}

	// --dpop-key-file: the caller's key; the raw output is the token alone.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "dpop.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = c.run(append(cc, "--dpop-key-file", keyFile)...)
	if code != exitOK {
		t.Fatalf("--dpop-key-file: exit %d\n%s", code, stderr)
	}
	at := checkTokenOutput(t, stdout)
	if cnfJKT(at) != thumbprint(t, &key.PublicKey) {
		t.Fatal("cnf.jkt is not the thumbprint of the --dpop-key-file key")
	}
	if got := callAPI("DPoP", at, dpopProof(t, key, http.MethodGet, api.URL+"/v1/invoices", at)); got != http.StatusOK {
		t.Fatalf("the API answered %d to the token with a proof of the key", got)
	}
	if callAPI("Bearer", at, "") != http.StatusUnauthorized {
		t.Fatal("the DPoP-bound token was accepted as a bearer token")
	}
	// A key file others can read is refused.
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stdout, _ := c.run(append(cc, "--dpop-key-file", keyFile)...); code != exitError || stdout != "" {
		t.Fatalf("world-readable key file: exit %d stdout %q, want 1", code, stdout)
	}

	// Without --dpop the printed token is a bearer token.
	code, stdout, stderr = c.run(append(cc, "--output", "json")...)
	if code != exitOK || json.Unmarshal([]byte(stdout), &tj) != nil || tj["token_type"] != "Bearer" {
		t.Fatalf("without --dpop: exit %d type %q\n%s", code, tj["token_type"], stderr)
	}
	if callAPI("Bearer", tj["access_token"], "") != http.StatusOK {
		t.Fatal("the bearer token was refused")
	}
}

// TestCLIAssertionAndExchange: `token --assertion-file F` runs the
// JWT-bearer grant with the workload token in F (refused when F is
// readable by others, not sent when expired) and `token --exchange`
// exchanges the token in --subject-token-file; each prints the token alone.
func TestCLIAssertionAndExchange(t *testing.T) {
	c := newCLI(t, oauthtest.Options{})
	dir := t.TempDir()
	wl, err := c.srv.NewWorkloadIssuer("https://cluster.example/workloads")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	valid, err := wl.Sign("system:serviceaccount:shop:orders", c.srv.Issuer, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	base := []string{"token", "--issuer", c.srv.Issuer, "--client-id", oauthtest.ClientNative, "--ca-file", c.ca, "--scope", oauthtest.ScopeAPIRead}
	code, stdout, stderr := c.run(append(base, "--assertion-file", write("wl", valid))...)
	if code != exitOK {
		t.Fatalf("--assertion-file: exit %d\n%s", code, stderr)
	}
	at := checkTokenOutput(t, stdout)
	if strings.Contains(stderr, valid) || c.srv.TokenRequests(oauthtest.GrantJWTBearer) != 1 {
		t.Fatalf("--assertion-file: %d JWT-bearer requests, or the assertion on stderr", c.srv.TokenRequests(oauthtest.GrantJWTBearer))
	}
	expired, _ := wl.Sign("system:serviceaccount:shop:orders", c.srv.Issuer, -time.Minute)
	if code, stdout, stderr := c.run(append(base, "--assertion-file", write("old", expired))...); code != exitError || stdout != "" || !strings.Contains(stderr, "expired") || c.srv.TokenRequests(oauthtest.GrantJWTBearer) != 1 {
		t.Fatalf("expired assertion: exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	open := write("open", valid)
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stdout, _ := c.run(append(base, "--assertion-file", open)...); code != exitError || stdout != "" {
		t.Fatalf("world-readable assertion file: exit %d stdout %q", code, stdout)
	}

	// The workload's token exchanged for another.
	secretFile := write("secret", oauthtest.ServiceSecret)
	code, stdout, stderr = c.run("token", "--exchange", "--issuer", c.srv.Issuer, "--client-id", oauthtest.ClientService,
		"--client-secret-file", secretFile, "--ca-file", c.ca, "--scope", oauthtest.ScopeAPIRead,
		"--subject-token-file", write("subject", at), "--subject-token-type", "access_token", "--audience", "api")
	if code != exitOK {
		t.Fatalf("--exchange: exit %d\n%s", code, stderr)
	}
	if ex := checkTokenOutput(t, stdout); ex == at || c.srv.TokenRequests(oauthtest.GrantTokenExchange) != 1 {
		t.Fatal("--exchange printed the subject token, or made no exchange")
	}
	if code, _, _ := c.run(append(base, "--exchange", "--subject-token-file", secretFile)...); code != exitUsage {
		t.Fatalf("--exchange without --subject-token-type: exit %d, want 2", code)
	}
	if code, _, _ := c.run(append(base, "--dpop")...); code != exitUsage {
		t.Fatalf("--dpop without a machine mode: exit %d, want 2", code)
	}
}

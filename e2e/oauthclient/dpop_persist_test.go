package oauthclient_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/oauthsafe/oauthsafe/internal/testkit/keyringtest"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/oauthtest/demoapi"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/tokenstore/keyring"
)

// The environment of the child processes of TestDPoPKeyPersistedWithRefreshToken.
const (
	envPersistRole  = "OAUTHSAFE_DPOP_PERSIST_ROLE" // "login" or "refresh"
	envPersistIss   = "OAUTHSAFE_DPOP_PERSIST_ISSUER"
	envPersistCA    = "OAUTHSAFE_DPOP_PERSIST_CA"    // PEM file: the OP's and the API's certificates
	envPersistStore = "OAUTHSAFE_DPOP_PERSIST_STORE" // "keyring:<lock dir>" or "file:<path>"
	envPersistAPI   = "OAUTHSAFE_DPOP_PERSIST_API"
	envPersistPass  = "OAUTHSAFE_DPOP_PERSIST_PASSPHRASE"
	persistKey      = "dpop-persist"
)

// persistStore opens the store named by spec in this process.
func persistStore(t testing.TB, spec string) tokenstore.Store {
	t.Helper()
	kind, arg, _ := strings.Cut(spec, ":")
	switch kind {
	case "keyring":
		return &keyring.Store{LockDir: arg}
	case "file":
		return &tokenstore.EncryptedFile{Path: arg, Passphrase: func() ([]byte, error) {
			return []byte(os.Getenv(envPersistPass)), nil
		}}
	}
	t.Fatalf("store spec %q", spec)
	return nil
}

// TestDPoPKeyPersistedWithRefreshToken (S27): a DPoP login in one OS
// process stores its record (refresh token and DPoP private key, sealed
// together) in the real keyring or an EncryptedFile; a NEW process,
// configured without DPoP and holding nothing but the store, resumes,
// refreshes with the stored key (the OP's binding check passes, the proof
// is the login key's) and calls a resource that checks the proof. With the
// key dropped from the record, the bound refresh token is useless: the
// refresh fails with a login-required error and the record is deleted.
// The sealed file never holds the key in the clear.
func TestDPoPKeyPersistedWithRefreshToken(t *testing.T) {
	if role := os.Getenv(envPersistRole); role != "" {
		persistChild(t, role)
		return
	}
	d := keyringtest.New(t)
	as := startAS(t, oauthtest.Options{})
	api := newDPoPAPI(t, as, demoapi.ResourceConfig{RequireDPoP: true})
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	var pems bytes.Buffer
	pems.Write(as.CACertPEM)
	pems.WriteString("\n-----BEGIN CERTIFICATE-----\n")
	pems.WriteString(base64.StdEncoding.EncodeToString(api.Certificate().Raw))
	pems.WriteString("\n-----END CERTIFICATE-----\n")
	if err := os.WriteFile(caFile, pems.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var authorizeJKT string
	var refreshJKTs []string // the thumbprint of each refresh's proof ("" without one)
	as.SetHook(func(r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.URL.Path == "/authorize" && r.URL.Query().Has("code_challenge"):
			authorizeJKT = r.URL.Query().Get("dpop_jkt")
		case strings.HasSuffix(r.URL.Path, "/token"):
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if form, _ := url.ParseQuery(string(body)); form.Get("grant_type") == "refresh_token" {
				refreshJKTs = append(refreshJKTs, proofJKT(r.Header.Get("DPoP")))
			}
		}
	})

	for _, kind := range []string{"keyring", "file"} {
		t.Run(kind, func(t *testing.T) {
			spec := "keyring:" + filepath.Join(d.Dir, "locks-"+kind)
			if kind == "file" {
				spec = "file:" + filepath.Join(dir, "store", "tokens.enc")
			}
			env := append(d.Env(), envPersistIss+"="+as.Issuer, envPersistCA+"="+caFile, envPersistStore+"="+spec,
				envPersistAPI+"="+api.URL, envPersistPass+"=correct horse battery staple")
			t.Setenv(envPersistPass, "correct horse battery staple")
			st := persistStore(t, spec)
			mu.Lock()
			authorizeJKT, refreshJKTs = "", nil
			mu.Unlock()

			// Process 1: login with DPoP; the record goes to the store.
			persistLogin(t, as, env)
			rec, err := engine.LoadRecord(context.Background(), st, persistKey)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			loginJKT := authorizeJKT
			mu.Unlock()
			if loginJKT == "" || rec.DPoPKey.IsZero() || storedJKT(t, rec) != loginJKT {
				t.Fatalf("the record does not hold the login's DPoP key (dpop_jkt %q)", loginJKT)
			}
			if kind == "file" {
				raw, err := os.ReadFile(strings.TrimPrefix(spec, "file:"))
				der := rec.DPoPKey.PKCS8()
				if err != nil || bytes.Contains(raw, der) || bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString(der))) ||
					bytes.Contains(raw, []byte(rec.RefreshToken)) {
					t.Fatalf("the encrypted file holds the key or the refresh token in the clear (%v)", err)
				}
			}

			// Process 2 and 3: new processes refresh with the stored key,
			// and the refreshed token works at the DPoP resource.
			for i := range 2 {
				if out := persistRun(t, env, "refresh"); !strings.Contains(out, "REFRESH-OK type=DPoP api=200") {
					t.Fatalf("refresh process %d:\n%s", i, out)
				}
				mu.Lock()
				got := refreshJKTs
				mu.Unlock()
				if len(got) != i+1 || got[i] != loginJKT {
					t.Fatalf("refresh proofs %q, want each by the login key %q", got, loginJKT)
				}
			}

			// The key dropped from the record: the bound refresh token is
			// useless, and the record is gone.
			rec, err = engine.LoadRecord(context.Background(), st, persistKey)
			if err != nil || storedJKT(t, rec) != loginJKT {
				t.Fatalf("after the refreshes the record lost its key (%v)", err)
			}
			rec.DPoPKey = engine.PrivateKey{}
			if err := engine.SaveRecord(context.Background(), st, persistKey, rec); err != nil {
				t.Fatal(err)
			}
			if out := persistRun(t, env, "refresh"); !strings.Contains(out, "REFRESH-ERR login_required=true") {
				t.Fatalf("refresh without the key:\n%s", out)
			}
			if _, err := engine.LoadRecord(context.Background(), st, persistKey); !errors.Is(err, tokenstore.ErrNotFound) {
				t.Fatalf("record after a refused refresh: %v", err)
			}
		})
	}
}

// proofJKT is the RFC 7638 thumbprint of a proof's jwk ("" without one).
func proofJKT(proof string) string {
	if proof == "" {
		return ""
	}
	jws, err := jose.ParseSignedCompact(proof, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(jws.Signatures) != 1 || jws.Signatures[0].Protected.JSONWebKey == nil {
		return "malformed"
	}
	tp, err := jws.Signatures[0].Protected.JSONWebKey.Thumbprint(crypto.SHA256)
	if err != nil {
		return "malformed"
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// storedJKT is the thumbprint of a record's key, computed here with
// go-jose and crypto/x509, not by the library.
func storedJKT(t *testing.T, rec *engine.Record) string {
	t.Helper()
	if rec.DPoPKey.IsZero() {
		return ""
	}
	k, err := x509.ParsePKCS8PrivateKey(rec.DPoPKey.PKCS8())
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

// persistLogin runs the login process: it prints the authorization URL,
// the parent signs in at the OP, and the child reads the callback URL on
// stdin, exchanges the code and stores the record.
func persistLogin(t *testing.T, as *oauthtest.Server, env []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := persistCmd(ctx, env, "login")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var out strings.Builder
	ok := false
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		if u, found := strings.CutPrefix(line, "AUTHURL "); found {
			cb, err := as.Login(ctx, u, "alice")
			if err != nil {
				t.Errorf("login at the OP: %v", err)
				cb = "failed"
			}
			fmt.Fprintln(stdin, cb)
		}
		if strings.Contains(line, "LOGIN-OK") {
			ok = true
		}
	}
	if err := cmd.Wait(); err != nil || !ok {
		t.Fatalf("login process: %v\n%s%s", err, out.String(), stderr.String())
	}
}

// persistRun runs a child and returns its combined output.
func persistRun(t *testing.T, env []string, role string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, _ := persistCmd(ctx, env, role).CombinedOutput()
	return string(out)
}

func caPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("no certificate in " + path)
	}
	return pool, nil
}

func persistCmd(ctx context.Context, env []string, role string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestDPoPKeyPersistedWithRefreshToken$", "-test.count=1", "-test.v")
	cmd.Env = append(append(os.Environ(), env...), envPersistRole+"="+role)
	return cmd
}

// persistChild is the child side: a process that shares nothing with the
// login but the store.
func persistChild(t *testing.T, role string) {
	ctx := context.Background()
	pool, err := caPool(os.Getenv(envPersistCA))
	if err != nil {
		t.Fatal(err)
	}
	st := persistStore(t, os.Getenv(envPersistStore))
	cfg := oauthclient.Config{
		Issuer: os.Getenv(envPersistIss), ClientID: oauthtest.ClientNative, RedirectURL: "http://127.0.0.1:41000/callback",
		Scopes: []string{"openid", "offline_access", oauthtest.ScopeAPIRead},
		HTTP:   strictnet.Config{RootCAs: pool},
	}
	switch role {
	case "login":
		cfg.DPoP = true
		c, err := oauthclient.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		p, authURL, err := c.Start(ctx, oauthclient.StartOptions{Resource: []string{os.Getenv(envPersistAPI)}})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("AUTHURL " + authURL)
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(strings.TrimSpace(line))
		if err != nil {
			t.Fatal(err)
		}
		toks, err := c.Exchange(ctx, p, u.Query())
		if err != nil {
			t.Fatal(err)
		}
		if toks.OAuth2Token().TokenType != "DPoP" {
			t.Fatalf("login token_type %q", toks.OAuth2Token().TokenType)
		}
		if _, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: st, Key: persistKey}, toks); err != nil {
			t.Fatal(err)
		}
		fmt.Println("LOGIN-OK")
	case "refresh":
		// DPoP is off in this process's configuration: only the stored
		// record can make the refresh a proven one.
		c, err := oauthclient.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		src, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: st, Key: persistKey}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := src.Token()
		if err != nil {
			fmt.Printf("REFRESH-ERR login_required=%v\n", errors.Is(err, tokenstore.ErrLoginRequired))
			return
		}
		hc, err := apiclient.New(src, apiclient.Config{AllowedOrigins: []string{os.Getenv(envPersistAPI)},
			HTTP: strictnet.Config{RootCAs: pool}})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Get(os.Getenv(envPersistAPI) + "/v1/read")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		fmt.Printf("REFRESH-OK type=%s api=%d\n", tok.TokenType, resp.StatusCode)
	default:
		t.Fatalf("role %q", role)
	}
}

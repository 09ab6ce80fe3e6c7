package oauthclient_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/tokenstore"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

func writeTokenJSON(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"access_token":"at-`+uuid.NewString()+`","token_type":"Bearer","expires_in":300}`)
}

// assertionChecker is a hostile token endpoint that verifies every
// private_key_jwt assertion it receives against S16 and records violations.
type assertionChecker struct {
	*httptest.Server
	clientID string
	pub      crypto.PublicKey
	alg      jose.SignatureAlgorithm
	kid      string

	mu       sync.Mutex
	jtis     map[string]bool
	problems []string
	count    int
}

func newAssertionChecker(t *testing.T, clientID string, pub crypto.PublicKey, alg jose.SignatureAlgorithm, kid string) *assertionChecker {
	a := &assertionChecker{clientID: clientID, pub: pub, alg: alg, kid: kid, jtis: map[string]bool{}}
	a.Server = httptest.NewTLSServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.Close)
	return a
}

func (a *assertionChecker) fail(format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.problems) < 20 {
		a.problems = append(a.problems, fmt.Sprintf(format, args...))
	}
}

func (a *assertionChecker) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		a.fail("form: %v", err)
		http.Error(w, "bad form", 400)
		return
	}
	if r.Header.Get("Authorization") != "" || r.PostForm.Has("client_secret") {
		a.fail("a second client authentication method was sent")
	}
	if got := r.PostForm.Get("client_assertion_type"); got != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		a.fail("client_assertion_type %q", got)
	}
	if got := r.PostForm.Get("client_id"); got != a.clientID {
		a.fail("client_id %q", got)
	}
	jws, err := jose.ParseSignedCompact(r.PostForm.Get("client_assertion"), []jose.SignatureAlgorithm{a.alg})
	if err != nil {
		a.fail("assertion does not parse with alg %s: %v", a.alg, err)
		http.Error(w, "bad assertion", 400)
		return
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "client-authentication+jwt" { // draft-ietf-oauth-rfc7523bis
		a.fail("typ header %q", typ)
	}
	if h.KeyID != a.kid {
		a.fail("kid %q, want %q", h.KeyID, a.kid)
	}
	if h.JSONWebKey != nil || h.ExtraHeaders["jku"] != nil || h.ExtraHeaders["x5c"] != nil {
		a.fail("key material in the header")
	}
	payload, err := jws.Verify(a.pub)
	if err != nil {
		a.fail("signature: %v", err)
		http.Error(w, "bad signature", 400)
		return
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(payload, &raw); err != nil {
		a.fail("claims: %v", err)
		return
	}
	var aud string
	if err := json.Unmarshal(raw["aud"], &aud); err != nil {
		a.fail("aud is not a single string: %s", raw["aud"])
	} else if aud != a.URL {
		a.fail("aud %q, want the issuer %q", aud, a.URL)
	}
	var c struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
		Jti string `json:"jti"`
		Iat int64  `json:"iat"`
		Exp int64  `json:"exp"`
	}
	json.Unmarshal(payload, &c)
	if c.Iss != a.clientID || c.Sub != a.clientID {
		a.fail("iss %q sub %q", c.Iss, c.Sub)
	}
	if life := c.Exp - c.Iat; life <= 0 || life > 60 {
		a.fail("exp - iat = %d, want 1..60", life)
	}
	if d := time.Since(time.Unix(c.Iat, 0)); d < -5*time.Second || d > 5*time.Second {
		a.fail("iat is %v away from now", d)
	}
	if _, err := uuid.Parse(c.Jti); err != nil {
		a.fail("jti %q is not a uuid", c.Jti)
	}
	a.mu.Lock()
	dup := a.jtis[c.Jti]
	a.jtis[c.Jti] = true
	a.count++
	a.mu.Unlock()
	if dup {
		a.fail("jti %q reused", c.Jti)
	}
	writeTokenJSON(w)
}

func (a *assertionChecker) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.Certificate())
	return p
}

func (a *assertionChecker) client(t *testing.T, key crypto.Signer) (*oauthclient.Client, error) {
	return oauthclient.New(context.Background(), oauthclient.Config{
		Issuer:     a.URL,
		ClientID:   a.clientID,
		PrivateKey: key,
		KeyID:      a.kid,
		HTTP:       strictnet.Config{RootCAs: a.pool()},
		Metadata: &oauthclient.Metadata{
			Issuer:                            a.URL,
			TokenEndpoint:                     a.URL + "/token",
			TokenEndpointAuthMethodsSupported: []string{"private_key_jwt"},
		},
	})
}

// TestPrivateKeyJWTAssertionClaims checks S16 on the wire with a hostile
// token endpoint: 1,000 RSA assertions, then ECDSA and Ed25519 ones.
func TestPrivateKeyJWTAssertionClaims(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	cases := []struct {
		name string
		key  crypto.Signer
		pub  crypto.PublicKey
		alg  jose.SignatureAlgorithm
		kid  string
		n    int
	}{
		{"RSA", rsaKey, &rsaKey.PublicKey, jose.RS256, "rsa-kid-1", 1000},
		{"ECDSA P-256", ecKey, &ecKey.PublicKey, jose.ES256, "ec-kid", 20},
		{"Ed25519", edKey, edKey.Public(), jose.EdDSA, "", 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAssertionChecker(t, "svc-jwt", tc.pub, tc.alg, tc.kid)
			c, err := a.client(t, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			const workers = 4
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < tc.n; i += workers {
						if _, err := c.ClientCredentials(oauthclient.GrantOptions{}).TokenContext(context.Background()); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			a.mu.Lock()
			defer a.mu.Unlock()
			if len(a.problems) > 0 {
				t.Fatalf("assertion problems: %q", a.problems)
			}
			if a.count != tc.n || len(a.jtis) != tc.n {
				t.Fatalf("%d assertions, %d distinct jti; want %d", a.count, len(a.jtis), tc.n)
			}
		})
	}
	t.Run("short RSA key refused", func(t *testing.T) {
		weak, _ := rsa.GenerateKey(rand.Reader, 1024)
		a := newAssertionChecker(t, "svc-jwt", &weak.PublicKey, jose.RS256, "")
		c, err := a.client(t, weak)
		if err == nil {
			_, err = c.ClientCredentials(oauthclient.GrantOptions{}).TokenContext(context.Background())
		}
		if !errors.Is(err, strictnet.ErrPolicy) || a.count != 0 {
			t.Fatalf("err = %v, %d assertions sent", err, a.count)
		}
	})
}

// mtlsServer requires a client certificate from pki (RFC 8705) and records
// which paths were used and by which certificate.
type mtlsServer struct {
	*httptest.Server
	mu    sync.Mutex
	paths []string
	bad   []string
}

func newMTLSServer(t *testing.T, pki *testPKI, clientID string) *mtlsServer {
	m := &mtlsServer{}
	m.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		m.mu.Lock()
		m.paths = append(m.paths, r.URL.Path)
		if len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != "service-mtls" {
			m.bad = append(m.bad, "no or wrong client certificate")
		}
		if r.PostForm.Get("client_id") != clientID || r.PostForm.Has("client_secret") ||
			r.PostForm.Has("client_assertion") || r.Header.Get("Authorization") != "" {
			m.bad = append(m.bad, "form "+r.PostForm.Encode())
		}
		m.mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/revoke") {
			return
		}
		writeTokenJSON(w)
	}))
	m.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.pool}
	m.StartTLS()
	t.Cleanup(m.Close)
	return m
}

func (m *mtlsServer) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(m.Certificate())
	return p
}

func TestTLSClientAuth(t *testing.T) {
	pki := newTestPKI(t)
	clientCert := pki.issue(t, "service-mtls")
	m := newMTLSServer(t, pki, "svc-mtls")
	md := func(aliases map[string]string) *oauthclient.Metadata {
		return &oauthclient.Metadata{
			Issuer:                            m.URL,
			TokenEndpoint:                     m.URL + "/token",
			RevocationEndpoint:                m.URL + "/revoke",
			TokenEndpointAuthMethodsSupported: []string{"tls_client_auth", "client_secret_basic"},
			MTLSEndpointAliases:               aliases,
		}
	}
	newClient := func(meta *oauthclient.Metadata) *oauthclient.Client {
		c, err := oauthclient.New(context.Background(), oauthclient.Config{
			Issuer: m.URL, ClientID: "svc-mtls", ClientCertificate: &clientCert,
			HTTP: strictnet.Config{RootCAs: m.pool()}, Metadata: meta,
		})
		if err != nil {
			t.Fatal(err)
		}
		if c.Config().AuthMethod != "tls_client_auth" {
			t.Fatalf("method %s", c.Config().AuthMethod)
		}
		return c
	}
	check := func(want ...string) {
		t.Helper()
		m.mu.Lock()
		defer m.mu.Unlock()
		if len(m.bad) > 0 || strings.Join(m.paths, " ") != strings.Join(want, " ") {
			t.Fatalf("paths %q (want %q), problems %q", m.paths, want, m.bad)
		}
		m.paths = nil
	}
	ctx := context.Background()

	t.Run("aliases used when present", func(t *testing.T) {
		c := newClient(md(map[string]string{"token_endpoint": m.URL + "/mtls/token", "revocation_endpoint": m.URL + "/mtls/revoke"}))
		src := c.ClientCredentials(oauthclient.GrantOptions{})
		if _, err := src.Token(); err != nil {
			t.Fatal(err)
		}
		if err := c.Revoke(ctx, "at-x", "access_token"); err != nil {
			t.Fatal(err)
		}
		check("/mtls/token", "/mtls/revoke")
	})
	t.Run("regular endpoints without aliases", func(t *testing.T) {
		c := newClient(md(nil))
		if _, err := c.ClientCredentials(oauthclient.GrantOptions{}).TokenContext(ctx); err != nil {
			t.Fatal(err)
		}
		check("/token")
	})
	t.Run("no certificate, no handshake", func(t *testing.T) {
		t.Setenv("OAUTHSAFE_TEST_MTLS_SECRET", "s3cret-value")
		sec, _ := secret.FromEnv("OAUTHSAFE_TEST_MTLS_SECRET")
		c, err := oauthclient.New(ctx, oauthclient.Config{
			Issuer: m.URL, ClientID: "svc-mtls", ClientSecret: sec,
			HTTP: strictnet.Config{RootCAs: m.pool()}, Metadata: md(nil),
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ClientCredentials(oauthclient.GrantOptions{}).TokenContext(ctx); err == nil {
			t.Fatal("token request without a client certificate succeeded")
		}
		check()
	})
	t.Run("certificate from another CA refused by the server", func(t *testing.T) {
		otherCert := newTestPKI(t).issue(t, "service-mtls")
		c, err := oauthclient.New(ctx, oauthclient.Config{
			Issuer: m.URL, ClientID: "svc-mtls", ClientCertificate: &otherCert,
			HTTP: strictnet.Config{RootCAs: m.pool()}, Metadata: md(nil),
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ClientCredentials(oauthclient.GrantOptions{}).TokenContext(ctx); err == nil {
			t.Fatal("foreign client certificate accepted")
		}
		check()
	})
}

// revocationServer is a hostile RFC 7009 endpoint answering with a fixed
// status and body, recording the form and the client authentication.
type revocationServer struct {
	*httptest.Server
	mu     sync.Mutex
	form   url.Values
	user   string
	status int
	body   string
	ctype  string
}

func TestRevoke(t *testing.T) {
	const token = "rt-REVOKE-ME-0123456789"
	const clientSecret = "revocation-client-secret"
	rs := &revocationServer{}
	rs.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		user, pass, _ := r.BasicAuth()
		rs.mu.Lock()
		defer rs.mu.Unlock()
		rs.form = r.PostForm
		rs.user = user
		if pass != clientSecret {
			rs.user = "wrong secret"
		}
		if rs.status == http.StatusFound {
			http.Redirect(w, r, "https://127.0.0.1:1/elsewhere", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", rs.ctype)
		w.WriteHeader(rs.status)
		io.WriteString(w, rs.body)
	}))
	defer rs.Close()
	pool := x509.NewCertPool()
	pool.AddCert(rs.Certificate())
	t.Setenv("OAUTHSAFE_TEST_REVOKE_SECRET", clientSecret)
	sec, _ := secret.FromEnv("OAUTHSAFE_TEST_REVOKE_SECRET")
	newClient := func(endpoint string) *oauthclient.Client {
		c, err := oauthclient.New(context.Background(), oauthclient.Config{
			Issuer: rs.URL, ClientID: "rev-client", ClientSecret: sec,
			HTTP:     strictnet.Config{RootCAs: pool},
			Metadata: &oauthclient.Metadata{Issuer: rs.URL, TokenEndpoint: rs.URL + "/token", RevocationEndpoint: endpoint},
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := newClient(rs.URL + "/revoke")

	cases := []struct {
		name    string
		hint    string
		status  int
		ctype   string
		body    string
		check   func(error) bool
		wantMsg string
	}{
		{"access token hint, 200", "access_token", 200, "", "", func(err error) bool { return err == nil }, ""},
		{"refresh token hint, 200 with a body", "refresh_token", 200, "application/json", `{}`, func(err error) bool { return err == nil }, ""},
		{"no hint", "", 200, "", "", func(err error) bool { return err == nil }, ""},
		{"unsupported_token_type", "access_token", 400, "application/json",
			`{"error":"unsupported_token_type","error_description":"cannot revoke this token"}`,
			func(err error) bool {
				var ae *oauthclient.AuthError
				return errors.As(err, &ae) && ae.Code == "unsupported_token_type" && ae.Endpoint == "revocation" &&
					errors.Is(err, oauthclient.ErrAuthorizationServer) && !errors.Is(err, tokenstore.ErrLoginRequired)
			}, "unsupported_token_type"},
		{"503 HTML", "access_token", 503, "text/html", "<html>down</html>",
			func(err error) bool {
				var re *oauthclient.AuthError
				return errors.As(err, &re) && re.Temporary() && errors.Is(err, oauthclient.ErrMalformedResponse)
			}, "HTTP 503"},
		{"redirect not followed", "access_token", http.StatusFound, "", "",
			func(err error) bool { return errors.Is(err, strictnet.ErrPolicy) }, "redirect"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs.mu.Lock()
			rs.status, rs.ctype, rs.body = tc.status, tc.ctype, tc.body
			rs.mu.Unlock()
			err := c.Revoke(context.Background(), token, tc.hint)
			if !tc.check(err) {
				t.Fatalf("err = %v", err)
			}
			if err != nil && (strings.Contains(err.Error(), token) || strings.Contains(err.Error(), clientSecret) || !strings.Contains(err.Error(), tc.wantMsg)) {
				t.Fatalf("error text %q: contains a secret or lacks %q", err, tc.wantMsg)
			}
			rs.mu.Lock()
			defer rs.mu.Unlock()
			wantForm := url.Values{"token": {token}}
			if tc.hint != "" {
				wantForm.Set("token_type_hint", tc.hint)
			}
			if rs.form.Encode() != wantForm.Encode() || rs.user != "rev-client" {
				t.Fatalf("server got form %q, basic user %q", rs.form.Encode(), rs.user)
			}
		})
	}
	t.Run("no revocation endpoint", func(t *testing.T) {
		if err := newClient("").Revoke(context.Background(), token, ""); !errors.Is(err, oauthclient.ErrNoEndpoint) {
			t.Fatalf("err = %v", err)
		}
	})
	// S19: a server that echoes the token in error_description must not
	// put the token into our error text.
	t.Run("echoed token not in the error", func(t *testing.T) {
		rs.mu.Lock()
		rs.status, rs.ctype, rs.body = 400, "application/json", `{"error":"invalid_request","error_description":"cannot revoke `+token+`"}`
		rs.mu.Unlock()
		err := c.Revoke(context.Background(), token, "refresh_token")
		var ae *oauthclient.AuthError
		if !errors.As(err, &ae) || ae.Problem != "" || ae.Code != "invalid_request" {
			t.Fatalf("err = %v, want the server's invalid_request answer", err)
		}
		if strings.Contains(err.Error(), token) || strings.Contains(ae.Description, token) {
			t.Fatalf("revocation error echoes the token: %q", err)
		}
	})
}

// TestTokenEndpointErrorNeverEchoesSecret: S19 for the token endpoint. A
// hostile server that echoes the client secret in error_description must
// not get it into our error text.
func TestTokenEndpointErrorNeverEchoesSecret(t *testing.T) {
	const clientSecret = "echoed-client-secret-55aa"
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": "wrong secret " + r.PostForm.Get("client_secret")})
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	t.Setenv("OAUTHSAFE_TEST_ECHO_SECRET", clientSecret)
	sec, _ := secret.FromEnv("OAUTHSAFE_TEST_ECHO_SECRET")
	c, err := oauthclient.New(context.Background(), oauthclient.Config{
		Issuer: srv.URL, ClientID: "echo", ClientSecret: sec, AuthMethod: "client_secret_post",
		HTTP:     strictnet.Config{RootCAs: pool},
		Metadata: &oauthclient.Metadata{Issuer: srv.URL, TokenEndpoint: srv.URL + "/token", DeviceAuthorizationEndpoint: srv.URL + "/device"},
	})
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"token": func() error {
			_, err := c.ClientCredentials(oauthclient.GrantOptions{}).TokenContext(context.Background())
			return err
		},
		"device authorization": func() error {
			_, err := c.DeviceAuth(context.Background())
			return err
		},
	}
	for name, call := range calls {
		err := call()
		var ae *oauthclient.AuthError
		if !errors.As(err, &ae) || ae.Code != "invalid_client" {
			t.Fatalf("%s: err = %v", name, err)
		}
		if strings.Contains(err.Error(), clientSecret) || strings.Contains(ae.Description, clientSecret) {
			t.Fatalf("%s endpoint error echoes the client secret: %q / %q", name, err, ae.Description)
		}
	}
}

package resourceclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe"

	"github.com/oauthsafe/oauthsafe/internal/storekey"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"golang.org/x/oauth2"
)

// TestNewChecksConfig: plain http only on a loopback host and only with
// AllowLoopbackHTTP (S1); no query; Browser needs RedirectURL;
// Credentials need a client id and an https issuer.
func TestNewChecksConfig(t *testing.T) {
	loop := strictnet.Config{AllowLoopbackHTTP: true}
	for _, tc := range []struct {
		cfg  Config
		want error
	}{
		{Config{Resource: "http://localhost:3000/mcp"}, strictnet.ErrPolicy},
		{Config{Resource: "http://example.com/mcp", HTTP: loop}, strictnet.ErrPolicy},
		{Config{Resource: "https://mcp.example/mcp?x=1"}, strictnet.ErrPolicy},
		{Config{Resource: "mcp.example/mcp"}, strictnet.ErrPolicy},
		{Config{Resource: "https://mcp.example/mcp", Browser: headless}, oauthsafe.ErrConfig},
		{Config{Resource: "https://mcp.example/mcp", Credentials: &Credentials{Issuer: "https://as.example"}}, oauthsafe.ErrConfig},
		{Config{Resource: "https://mcp.example/mcp", Credentials: &Credentials{Issuer: "http://as.example", ClientID: "c"}}, strictnet.ErrPolicy},
		{Config{Resource: "https://mcp.example/mcp", ClientIDMetadataURL: "http://localhost/cimd.json", HTTP: loop}, strictnet.ErrPolicy},
		{Config{Resource: "http://localhost:3000/mcp", HTTP: loop}, nil},
		{Config{Resource: "http://[::1]:3000/mcp", HTTP: loop}, nil},
		{Config{Resource: "https://mcp.example/mcp"}, nil},
	} {
		_, err := New(context.Background(), tc.cfg)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("New(%+v): %v, want %v", tc.cfg.Resource, err, tc.want)
		}
	}
}

// TestWithin: the same origin (default ports equal to none) and a path
// under the resource's by whole segments, no dot segment, no user info.
func TestWithin(t *testing.T) {
	res, _ := url.Parse("https://h.example/a/b")
	for raw, want := range map[string]bool{
		"https://h.example/a/b":         true,
		"https://h.example/a/b/":        true,
		"https://H.EXAMPLE:443/a/b/c":   true,
		"https://h.example/a/bc":        false,
		"https://h.example/a":           false,
		"https://h.example/a/b/../c":    false,
		"https://h.example/a/b/%2e%2e/": false,
		"https://h.example/a/b%2fc":     false,
		"http://h.example/a/b":          false,
		"https://h.example:8443/a/b":    false,
		"https://other.example/a/b":     false,
		"https://u@h.example/a/b":       false,
	} {
		u, _ := url.Parse(raw)
		if got := within(res, u); got != want {
			t.Errorf("within(%s) = %v, want %v", raw, got, want)
		}
	}
	root, _ := url.Parse("http://localhost:3000")
	u, _ := url.Parse("http://localhost:3000/mcp")
	if !within(root, u) {
		t.Error("a resource without a path covers its origin")
	}
}

// TestChainOverLoopbackHTTP (S1, S3, S4, S6, S28): the chain over plain
// http on loopback with AllowLoopbackHTTP: the request is sent without a
// token, its 401 leads to the metadata, the registration and the login
// (S256, the resource in both requests, exactly the metadata's resource),
// and the request is replayed with the token.
func TestChainOverLoopbackHTTP(t *testing.T) {
	m := newMock(t)
	if err := m.call(t, m.config()); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(m.paths(), " ")
	want := "/mcp /.well-known/oauth-protected-resource/mcp /.well-known/oauth-authorization-server/as /as/register /as/authorize /as/token /mcp"
	if got != want {
		t.Fatalf("requests:\n got %s\nwant %s", got, want)
	}
	auths, _ := m.requests("/as/authorize")
	q := auths[0].URL.Query()
	_, toks := m.requests("/as/token")
	if q.Get("code_challenge_method") != "S256" || q.Get("resource") != m.URL+"/mcp" || toks[0].Get("resource") != m.URL+"/mcp" || q.Has("scope") {
		t.Fatalf("authorization %v, token %v", q, toks[0])
	}
	_, regs := m.requests("/as/register")
	if regs[0].Get("application_type") != `"native"` || !strings.Contains(regs[0].Get("grant_types"), "refresh_token") {
		t.Fatalf("registration %v: want a native client asking for refresh tokens", regs[0])
	}
}

// TestDiscoveryOrder: metadata only at the root well-known URL names the
// origin, which is then the resource indicator; with no metadata at all
// (the 2025-03-26 revision) the authorization server is the resource's
// origin, with its metadata there or else /authorize, /token and
// /register there.
func TestDiscoveryOrder(t *testing.T) {
	t.Run("root", func(t *testing.T) {
		m := newMock(t)
		m.prmPath, m.prm["resource"] = "/.well-known/oauth-protected-resource", m.URL
		if err := m.call(t, m.config()); err != nil {
			t.Fatal(err)
		}
		auths, _ := m.requests("/as/authorize")
		if auths[0].URL.Query().Get("resource") != m.URL {
			t.Fatalf("resource %q, want the origin", auths[0].URL.Query().Get("resource"))
		}
	})
	t.Run("default endpoints", func(t *testing.T) {
		m := newMock(t)
		m.prm, m.asMeta = nil, nil
		if err := m.call(t, m.config()); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"/register", "/authorize", "/token"} {
			if rs, _ := m.requests(p); len(rs) != 1 {
				t.Errorf("%s asked %d times, want once", p, len(rs))
			}
		}
	})
	t.Run("metadata issuer mismatch", func(t *testing.T) {
		m := newMock(t)
		m.asMeta["issuer"] = "https://attacker.example"
		if err := m.call(t, m.config()); !errors.Is(err, oauthclient.ErrIssuerMismatch) {
			t.Fatalf("%v, want ErrIssuerMismatch", err)
		}
		for _, p := range m.paths() {
			if strings.HasPrefix(p, "/as/") || p == "/register" || p == "/authorize" {
				t.Fatalf("%s was asked after a mismatched issuer", p)
			}
		}
	})
}

// TestRegistrationPriority: pre-registered credentials at their issuer
// (client_secret_basic, or private_key_jwt with their PrivateKey and
// KeyID), a metadata document when the server accepts one,
// else dynamic registration with the method it answers; credentials for
// another issuer are never sent.
func TestRegistrationPriority(t *testing.T) {
	sec, _ := secret.FromReader(strings.NewReader("pre-secret"))
	t.Run("pre-registered", func(t *testing.T) {
		m := newMock(t)
		m.asMeta["token_endpoint_auth_methods_supported"] = []string{"client_secret_basic"}
		cfg := m.config()
		cfg.Credentials = &Credentials{Issuer: m.URL + "/as", ClientID: "pre", ClientSecret: sec}
		if err := m.call(t, cfg); err != nil {
			t.Fatal(err)
		}
		_, toks := m.requests("/as/token")
		if toks[0].Get("basic") != "pre:pre-secret" {
			t.Fatalf("token request %v: want basic pre:pre-secret", toks[0])
		}
		if rs, _ := m.requests("/as/register"); len(rs) != 0 {
			t.Fatal("registered although pre-registered")
		}
	})
	t.Run("pre-registered with a private key", func(t *testing.T) {
		m := newMock(t)
		m.asMeta["token_endpoint_auth_methods_supported"] = []string{"client_secret_basic", "private_key_jwt"}
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		cfg := m.config()
		cfg.Credentials = &Credentials{Issuer: m.URL + "/as", ClientID: "pre", PrivateKey: key, KeyID: "k1"}
		if err := m.call(t, cfg); err != nil {
			t.Fatal(err)
		}
		_, toks := m.requests("/as/token")
		f := toks[0]
		if f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || f.Get("basic") != "" {
			t.Fatalf("token request %v: want private_key_jwt", f)
		}
		hdr, _, _ := strings.Cut(f.Get("client_assertion"), ".")
		if b, err := base64.RawURLEncoding.DecodeString(hdr); err != nil || !strings.Contains(string(b), `"kid":"k1"`) {
			t.Fatalf("client assertion header %s: want kid k1", b)
		}
	})
	t.Run("credentials of another issuer", func(t *testing.T) {
		m := newMock(t)
		cfg := m.config()
		cfg.Credentials = &Credentials{Issuer: "https://other.example", ClientID: "pre", ClientSecret: sec}
		if err := m.call(t, cfg); err != nil {
			t.Fatal(err)
		}
		for _, f := range m.forms {
			if strings.Contains(f.Encode(), "pre") {
				t.Fatalf("another issuer's client was sent: %v", f)
			}
		}
	})
	t.Run("metadata document", func(t *testing.T) {
		m := newMock(t)
		m.asMeta["client_id_metadata_document_supported"] = true
		cfg := m.config()
		cfg.ClientIDMetadataURL = "https://client.example/cimd.json"
		if err := m.call(t, cfg); err != nil {
			t.Fatal(err)
		}
		auths, _ := m.requests("/as/authorize")
		if auths[0].URL.Query().Get("client_id") != cfg.ClientIDMetadataURL {
			t.Fatalf("client_id %q", auths[0].URL.Query().Get("client_id"))
		}
	})
	for _, method := range []string{"client_secret_basic", "client_secret_post", "none"} {
		t.Run("dynamic "+method, func(t *testing.T) {
			m := newMock(t)
			m.asMeta["token_endpoint_auth_methods_supported"] = []string{method}
			m.regReply = map[string]any{"client_id": "dyn", "token_endpoint_auth_method": method}
			if method != "none" {
				m.regReply["client_secret"] = "dyn-secret"
			}
			if err := m.call(t, m.config()); err != nil {
				t.Fatal(err)
			}
			_, toks := m.requests("/as/token")
			got := "none"
			switch {
			case toks[0].Get("basic") == "dyn:dyn-secret":
				got = "client_secret_basic"
			case toks[0].Get("client_secret") == "dyn-secret":
				got = "client_secret_post"
			}
			if got != method {
				t.Fatalf("token request authenticated with %s, want %s", got, method)
			}
		})
	}
}

// TestScopeChoice: the challenge's scope, else scopes_supported, else
// none; offline_access only when listed and wanted; never beyond the
// ceiling.
func TestScopeChoice(t *testing.T) {
	for _, tc := range []struct {
		name      string
		chal      string
		supported []string
		asScopes  []string
		want      bool
		ceiling   []string
		scope     string
	}{
		{"challenge", `, scope="mcp:basic"`, []string{"mcp:other"}, nil, false, nil, "mcp:basic"},
		{"scopes_supported", "", []string{"mcp:basic", "mcp:read"}, nil, false, nil, "mcp:basic mcp:read"},
		{"none", "", nil, nil, false, nil, ""},
		{"offline_access listed and wanted", "", []string{"mcp:basic"}, []string{"mcp:basic", "offline_access"}, true, nil, "mcp:basic offline_access"},
		{"offline_access not listed", "", []string{"mcp:basic"}, []string{"mcp:basic"}, true, nil, "mcp:basic"},
		{"offline_access not wanted", "", []string{"mcp:basic"}, []string{"mcp:basic", "offline_access"}, false, nil, "mcp:basic"},
		{"ceiling", `, scope="mcp:basic mcp:admin"`, nil, []string{"offline_access"}, true, []string{"mcp:basic"}, "mcp:basic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMock(t)
			m.chal = tc.chal
			if tc.supported != nil {
				m.prm["scopes_supported"] = tc.supported
			}
			if tc.asScopes != nil {
				m.asMeta["scopes_supported"] = tc.asScopes
			}
			cfg := m.config()
			cfg.WantRefreshToken, cfg.ScopeCeiling = tc.want, tc.ceiling
			if err := m.call(t, cfg); err != nil {
				t.Fatal(err)
			}
			auths, _ := m.requests("/as/authorize")
			if got := auths[0].URL.Query().Get("scope"); got != tc.scope {
				t.Fatalf("scope %q, want %q", got, tc.scope)
			}
		})
	}
}

// TestStepUpUnion: a 403 insufficient_scope re-authorizes with the
// granted and the required scopes and replays the request; a resource
// asking again for a scope already granted fails at once.
func TestStepUpUnion(t *testing.T) {
	m := newMock(t)
	m.chal, m.need = `, scope="mcp:basic"`, "mcp:write"
	if err := m.call(t, m.config()); err != nil {
		t.Fatal(err)
	}
	auths, _ := m.requests("/as/authorize")
	if len(auths) != 2 || auths[1].URL.Query().Get("scope") != "mcp:basic mcp:write" {
		t.Fatalf("%d authorizations; want 2, the second for mcp:basic mcp:write", len(auths))
	}

	m = newMock(t)
	m.chal, m.need = `, scope="mcp:admin"`, "never-granted"
	m.prm["scopes_supported"] = []string{"mcp:admin"}
	cfg := m.config()
	cfg.ScopeCeiling = []string{"mcp:admin"}
	var se *StepUpError
	if err := m.call(t, cfg); !errors.As(err, &se) || !slices.Equal(se.Scopes, []string{"never-granted"}) {
		t.Fatalf("%v, want a *StepUpError", err)
	}
	if auths, _ := m.requests("/as/authorize"); len(auths) != 1 {
		t.Fatalf("%d authorizations, want 1: nothing new to ask for", len(auths))
	}
}

// TestMaxStepUpsNegative: a negative MaxStepUps allows no step-up.
func TestMaxStepUpsNegative(t *testing.T) {
	m := newMock(t)
	m.chal, m.need = `, scope="mcp:basic"`, "mcp:write"
	cfg := m.config()
	cfg.MaxStepUps = -1
	var se *StepUpError
	if err := m.call(t, cfg); !errors.As(err, &se) || se.Attempts != 0 {
		t.Fatalf("%v, want a *StepUpError after no re-authorization", err)
	}
	if auths, _ := m.requests("/as/authorize"); len(auths) != 1 {
		t.Fatalf("%d authorizations, want 1", len(auths))
	}
}

// grantFunc is a Grant for tests.
type grantFunc func(ctx context.Context, s Server) (oauth2.TokenSource, error)

func (g grantFunc) TokenSource(ctx context.Context, s Server) (oauth2.TokenSource, error) {
	return g(ctx, s)
}

// TestGrant: with a Grant, no browser runs and nothing is registered: the
// Grant gets the discovered server (issuer, checked metadata, resource,
// scopes) once the issuer is confirmed, and its tokens go to the resource.
func TestGrant(t *testing.T) {
	m := newMock(t)
	m.chal = `, scope="mcp:basic"`
	m.issued["machine-token"] = "mcp:basic"
	var got Server
	var confirmed string
	cfg := m.config()
	cfg.Browser = func(context.Context, string) (*url.URL, error) { t.Fatal("browser"); return nil, nil }
	cfg.ConfirmIssuer = func(_ context.Context, iss string) error { confirmed = iss; return nil }
	cfg.Grant = grantFunc(func(_ context.Context, s Server) (oauth2.TokenSource, error) {
		got = s
		return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "machine-token", TokenType: "Bearer"}), nil
	})
	if err := m.call(t, cfg); err != nil {
		t.Fatal(err)
	}
	if got.Issuer != m.URL+"/as" || confirmed != got.Issuer || got.Resource != m.URL+"/mcp" || got.Metadata.TokenEndpoint != m.URL+"/as/token" || !slices.Equal(got.Scopes, []string{"mcp:basic"}) {
		t.Fatalf("Grant got %+v (confirmed %q)", got, confirmed)
	}
	for _, p := range m.paths() {
		if p == "/as/register" || p == "/as/authorize" {
			t.Fatalf("%s asked with a Grant", p)
		}
	}
}

// TestLoggerSeesNoSecret: the Logger's events name the issuer and the
// kind of client, never a token, a code or a secret.
func TestLoggerSeesNoSecret(t *testing.T) {
	m := newMock(t)
	m.regReply = map[string]any{"client_id": "dyn", "client_secret": "dyn-secret", "token_endpoint_auth_method": "client_secret_basic"}
	m.asMeta["token_endpoint_auth_methods_supported"] = []string{"client_secret_basic"}
	var buf strings.Builder
	cfg := m.config()
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	if err := m.call(t, cfg); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "registered client") || !strings.Contains(out, "authorizing") {
		t.Fatalf("log lacks the registration or the login:\n%s", out)
	}
	for _, s := range []string{"tok-1", "code-1", "dyn-secret"} {
		if strings.Contains(out, s) {
			t.Fatalf("log holds %q:\n%s", s, out)
		}
	}
}

// TestStoredRegistration: a dynamic registration is kept per issuer (and
// named "oauthsafe" by default); a record that names another issuer than
// the one it is read for is ErrCorrupt and never used; Session with
// nothing stored is ErrLoginRequired and opens no browser.
func TestStoredRegistration(t *testing.T) {
	m := newMock(t)
	store := new(tokenstore.Memory)
	cfg := m.config()
	cfg.Store = store
	if err := m.call(t, cfg); err != nil {
		t.Fatal(err)
	}
	_, regs := m.requests("/as/register")
	if len(regs) != 1 || regs[0].Get("client_name") != `"oauthsafe"` {
		t.Fatalf("registrations %v: want one, named oauthsafe", regs)
	}
	ctx := context.Background()
	cr, err := storedClient(ctx, store, m.URL+"/as", cfg.RedirectURL)
	if err != nil || cr.ClientID != "dyn-client" || cr.Issuer != m.URL+"/as" {
		t.Fatalf("storedClient: %+v, %v", cr, err)
	}
	if _, err := storedClient(ctx, store, "https://other.example", cfg.RedirectURL); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("another issuer: %v, want ErrNotFound", err)
	}
	// A record moved under another issuer's key does not open there.
	b, _ := store.Get(ctx, storekey.Registration(m.URL+"/as", cfg.RedirectURL))
	other := storekey.Registration("https://other.example", cfg.RedirectURL)
	store.Update(ctx, other, func(ctx context.Context, tx tokenstore.Tx) error { return tx.Put(ctx, b) })
	if _, err := storedClient(ctx, store, "https://other.example", cfg.RedirectURL); !errors.Is(err, tokenstore.ErrCorrupt) {
		t.Fatalf("a record naming another issuer: %v, want ErrCorrupt", err)
	}

	fresh := newMock(t)
	fcfg := fresh.config()
	fcfg.Browser = func(context.Context, string) (*url.URL, error) { t.Fatal("browser"); return nil, nil }
	c, err := New(ctx, fcfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Session(ctx); !errors.Is(err, tokenstore.ErrLoginRequired) {
		t.Fatalf("Session with nothing stored: %v, want ErrLoginRequired", err)
	}
	if rs, _ := fresh.requests("/as/register"); len(rs) != 0 {
		t.Fatal("Session registered")
	}
}

// TestDPoPOnlyChallenge: a 401 with a DPoP challenge and no Bearer one
// turns DPoP on for the login; a Bearer one (alone or beside DPoP) does not.
func TestDPoPOnlyChallenge(t *testing.T) {
	for ch, want := range map[string]bool{
		`DPoP resource_metadata="https://r.example/m", algs="ES256"`: true,
		`Bearer resource_metadata="https://r.example/m"`:             false,
		`Bearer realm="x", DPoP algs="ES256"`:                        false,
		``:                                                           false,
	} {
		resp := &http.Response{Header: http.Header{}}
		if ch != "" {
			resp.Header.Set("WWW-Authenticate", ch)
		}
		if got := dpopOnly(resp); got != want {
			t.Errorf("dpopOnly(%q) = %v, want %v", ch, got, want)
		}
	}
	if dpopOnly(nil) {
		t.Error("dpopOnly(nil)")
	}
}

// onlyReader hides every interface but io.Reader, so that net/http sets
// no GetBody.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// TestBodyReplayed: a request body without GetBody is kept, and the
// request is sent again, whole, with the token after the login.
func TestBodyReplayed(t *testing.T) {
	m := newMock(t)
	c, err := New(context.Background(), m.config())
	if err != nil {
		t.Fatal(err)
	}
	const body = `{"jsonrpc":"2.0","id":7,"method":"initialize"}`
	resp, err := c.HTTPClient().Post(m.URL+"/mcp", "application/json", onlyReader{strings.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	rs, forms := m.requests("/mcp")
	if resp.StatusCode != 200 || len(rs) != 2 {
		t.Fatalf("status %d, %d requests to the resource; want 200 after 2", resp.StatusCode, len(rs))
	}
	for i, f := range forms {
		if f.Get("id") != "7" {
			t.Fatalf("request %d had body %v, want the whole body", i, f)
		}
	}
}

// TestOneLoopbackWarning (S1): a Client with AllowLoopbackHTTP logs the
// warning once, though it builds several strict clients, and its Logger
// still gets its other events.
func TestOneLoopbackWarning(t *testing.T) {
	m := newMock(t)
	var buf strings.Builder
	cfg := m.config()
	cfg.HTTP.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	if err := m.call(t, cfg); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "AllowLoopbackHTTP is on"); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), "oauthsafe: server call") {
		t.Fatalf("the Logger lost the call events:\n%s", buf.String())
	}
}

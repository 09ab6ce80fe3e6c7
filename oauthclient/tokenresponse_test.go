package oauthclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe"
	"github.com/oauthsafe/oauthsafe/tokenstore"

	"github.com/oauthsafe/oauthsafe/internal/netrule"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"golang.org/x/oauth2"
)

func TestTokenResponseHostile(t *testing.T) {
	cases := []struct {
		name  string
		write func(h *hostileAS, w http.ResponseWriter)
		want  error
	}{
		{"unknown token_type", func(h *hostileAS, w http.ResponseWriter) { h.writeTokens(w, map[string]any{"token_type": "MAC"}) }, errUnknownTokenType},
		{"DPoP token_type not supported", func(h *hostileAS, w http.ResponseWriter) { h.writeTokens(w, map[string]any{"token_type": "DPoP"}) }, errUnknownTokenType},
		{"missing token_type", func(h *hostileAS, w http.ResponseWriter) { h.writeTokens(w, map[string]any{"token_type": nil}) }, ErrMalformedResponse},
		{"scope wider than requested", func(h *hostileAS, w http.ResponseWriter) {
			h.writeTokens(w, map[string]any{"scope": "openid profile admin"})
		}, errScopeWidened},
		{"error inside 200", func(h *hostileAS, w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"error":"invalid_grant","error_description":"code reused"}`))
		}, ErrAuthorizationServer},
		{"error inside 200 with a token too", func(h *hostileAS, w http.ResponseWriter) {
			h.writeTokens(w, map[string]any{"error": "server_error"})
		}, ErrAuthorizationServer},
		{"HTML body", func(h *hostileAS, w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<!DOCTYPE html><html><body>Login</body></html>"))
		}, ErrMalformedResponse},
		{"HTML error page 502", func(h *hostileAS, w http.ResponseWriter) {
			w.WriteHeader(502)
			w.Write([]byte("<html>bad gateway</html>"))
		}, ErrMalformedResponse},
		{"oversized body", func(h *hostileAS, w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"access_token":"` + strings.Repeat("A", netrule.MaxResponseSize) + `","token_type":"Bearer"}`))
		}, strictnet.ErrResponseTooLarge},
		{"access_token not a string", func(h *hostileAS, w http.ResponseWriter) { h.writeTokens(w, map[string]any{"access_token": 42}) }, ErrMalformedResponse},
		{"expires_in an object", func(h *hostileAS, w http.ResponseWriter) {
			h.writeTokens(w, map[string]any{"expires_in": map[string]int{"a": 1}})
		}, ErrMalformedResponse},
		{"expires_in not numeric", func(h *hostileAS, w http.ResponseWriter) { h.writeTokens(w, map[string]any{"expires_in": "soon"}) }, ErrMalformedResponse},
		{"redirect from token endpoint", func(h *hostileAS, w http.ResponseWriter) {
			w.Header().Set("Location", "https://evil.example/token")
			w.WriteHeader(http.StatusTemporaryRedirect)
		}, strictnet.ErrPolicy},
		{"id token with wrong nonce", func(h *hostileAS, w http.ResponseWriter) {
			h.writeTokens(w, map[string]any{"id_token": h.idToken(nopTB{}, map[string]any{"nonce": "other"})})
		}, ErrIDToken},
		{"id token missing in OIDC flow", func(h *hostileAS, w http.ResponseWriter) { h.writeTokens(w, map[string]any{"id_token": nil}) }, ErrIDToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostileAS(t)
			h.setToken(func(w http.ResponseWriter, r *http.Request) { tc.write(h, w) })
			c := h.client(t)
			p, good := h.start(t, c)
			toks, err := c.Exchange(context.Background(), p, good)
			if !isErr(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if toks != nil {
				t.Fatal("tokens returned with an error")
			}
			if strings.Contains(err.Error(), "AT-secret-value") || strings.Contains(err.Error(), "RT-secret-value") {
				t.Fatalf("error string leaks a token: %v", err)
			}
			if h.tokenCalls.Load() != 1 {
				t.Fatalf("token calls = %d, want exactly 1 (no retry, no probing)", h.tokenCalls.Load())
			}
		})
	}
}

func TestAuthErrorKeepsRetrieveErrorWithoutBodyInMessage(t *testing.T) {
	h := newHostileAS(t)
	h.setToken(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		w.Write([]byte(`{"error":"invalid_grant","error_description":"bad","debug":"SECRET-BODY-DETAIL"}`))
	})
	c := h.client(t)
	p, good := h.start(t, c)
	_, err := c.Exchange(context.Background(), p, good)
	var ae *AuthError
	if !errors.As(err, &ae) || ae.Code != "invalid_grant" || ae.StatusCode != 400 {
		t.Fatalf("err = %#v", err)
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" || re.ErrorDescription != "bad" || re.Response == nil || re.Response.StatusCode != 400 {
		t.Fatalf("*oauth2.RetrieveError with the status and error fields is not reachable: %#v", re)
	}
	if re.Body != nil || re.Response.Request != nil || (re.Response.Body != nil && re.Response.Body != http.NoBody) {
		t.Fatal("the *oauth2.RetrieveError holds the body or the request (S19)")
	}
	if strings.Contains(err.Error(), "SECRET-BODY-DETAIL") {
		t.Fatal("error string contains the response body")
	}
	if !errors.Is(err, tokenstore.ErrLoginRequired) {
		t.Fatal("invalid_grant from the token endpoint must match ErrLoginRequired")
	}
}

func TestStalledTokenEndpoint(t *testing.T) {
	h := newHostileAS(t)
	release := make(chan struct{})
	defer close(release)
	h.setToken(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		// A stalled endpoint never answers: returning would send an empty
		// 200, which a loaded machine could deliver before the client's
		// cancellation.
		panic(http.ErrAbortHandler)
	})
	cfg := h.config()
	cfg.HTTP.Timeout = 300 * time.Millisecond
	c, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, good := h.start(t, c)
	_, err = c.Exchange(context.Background(), p, good)
	var ne interface{ Timeout() bool }
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a timeout error", err)
	}

	// The caller's context also bounds the call.
	cfg.HTTP.Timeout = time.Minute
	c, _ = New(context.Background(), cfg)
	p, good = h.start(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.Exchange(ctx, p, good); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}

func TestExpiresIn(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		raw  string
		want time.Duration
	}{
		{`3600`, time.Hour},
		{`"3600"`, time.Hour},
		{`" 120 "`, 2 * time.Minute},
		{`0`, missingExpiry},
		{`"0"`, missingExpiry},
		{`-5`, missingExpiry},
		{`0.5`, missingExpiry},
		{`"0.9"`, missingExpiry},
		{`1e-9`, missingExpiry},
		{`null`, missingExpiry},
		{``, missingExpiry},
		{`1e300`, maxExpiry},
		{`99999999999999999999999`, maxExpiry},
		{`3600.9`, time.Hour},
	}
	for _, tc := range cases {
		body := `{"access_token":"a","token_type":"bearer"`
		if tc.raw != "" {
			body += `,"expires_in":` + tc.raw
		}
		body += `}`
		tr, err := parseTokenResponse(200, []byte(body), now, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.raw, err)
		}
		if got := tr.token.Expiry.Sub(now); got != tc.want {
			t.Errorf("expires_in %s: lifetime %v, want %v", tc.raw, got, tc.want)
		}
	}
	for _, bad := range []string{`"soon"`, `true`, `[1]`, `{"a":1}`, `"NaN"`} {
		_, err := parseTokenResponse(200, []byte(`{"access_token":"a","token_type":"Bearer","expires_in":`+bad+`}`), now, nil)
		if !errors.Is(err, ErrMalformedResponse) {
			t.Errorf("expires_in %s: err = %v, want ErrMalformedResponse", bad, err)
		}
	}
}

func TestScopeAbsentMeansRequested(t *testing.T) {
	h := newHostileAS(t)
	h.setToken(func(w http.ResponseWriter, r *http.Request) { h.writeTokens(w, map[string]any{"scope": nil}) })
	c := h.client(t)
	p, good := h.start(t, c)
	toks, err := c.Exchange(context.Background(), p, good)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(toks.Scopes()); string(got) != `["openid","profile"]` {
		t.Fatalf("scopes %s", got)
	}
}

func TestNarrowerScopeIsExposed(t *testing.T) {
	h := newHostileAS(t)
	h.setToken(func(w http.ResponseWriter, r *http.Request) { h.writeTokens(w, map[string]any{"scope": "openid"}) })
	c := h.client(t)
	p, good := h.start(t, c)
	toks, err := c.Exchange(context.Background(), p, good)
	if err != nil {
		t.Fatal(err)
	}
	if s := toks.Scopes(); len(s) != 1 || s[0] != "openid" {
		t.Fatalf("granted scopes %v, want [openid]", s)
	}
}

func TestOneClientAuthMethod(t *testing.T) {
	t.Setenv("OAUTHSAFE_TEST_SECRET", "s3cr3t")
	sec, err := secret.FromEnv("OAUTHSAFE_TEST_SECRET")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []authMethod{authClientSecretBasic, authClientSecretPost} {
		t.Run(string(m), func(t *testing.T) {
			h := newHostileAS(t)
			h.setToken(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(401)
				w.Write([]byte(`{"error":"invalid_client"}`))
			})
			cfg := h.config()
			cfg.ClientSecret, cfg.AuthMethod = sec, string(m)
			c, err := New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			p, good := h.start(t, c)
			_, err = c.Exchange(context.Background(), p, good)
			var ae *AuthError
			if !errors.As(err, &ae) || ae.Code != "invalid_client" {
				t.Fatalf("err = %v", err)
			}
			if h.tokenCalls.Load() != 1 {
				t.Fatalf("%d token requests: a client must not probe another auth method", h.tokenCalls.Load())
			}
			user, pass, basic := (&http.Request{Header: h.lastHeader}).BasicAuth()
			switch m {
			case authClientSecretBasic:
				if !basic || user != "client-1" || pass != "s3cr3t" || h.lastForm.Has("client_secret") {
					t.Fatal("basic auth not used exactly")
				}
			case authClientSecretPost:
				if basic || h.lastForm.Get("client_secret") != "s3cr3t" {
					t.Fatal("post auth not used exactly")
				}
			}
		})
	}
}

func TestAuthMethodMustBeListed(t *testing.T) {
	t.Setenv("OAUTHSAFE_TEST_SECRET", "s3cr3t")
	sec, _ := secret.FromEnv("OAUTHSAFE_TEST_SECRET")
	h := newHostileAS(t)
	h.set("token_endpoint_auth_methods_supported", []string{"client_secret_post"})
	cfg := h.config()
	cfg.ClientSecret, cfg.AuthMethod = sec, string(authClientSecretBasic)
	if _, err := New(context.Background(), cfg); !errors.Is(err, strictnet.ErrPolicy) {
		t.Fatalf("err = %v, want ErrPolicy", err)
	}
	cfg.AuthMethod = "" // discovered: the one the server lists
	c, err := New(context.Background(), cfg)
	if err != nil || c.Config().AuthMethod != string(authClientSecretPost) {
		t.Fatalf("picked %v, %v", c, err)
	}
	// AuthMethod is a registered name: a misspelt or unknown one is a
	// configuration error at New, found before any request (here: before
	// discovery).
	for _, m := range []string{"client_secret", "Client_Secret_Post", "client_secret_jwt", "self_signed_tls_client_auth"} {
		var calls bytes.Buffer // the strict client logs one event per server call
		cfg := cfg
		cfg.Metadata, cfg.AuthMethod = nil, m
		cfg.HTTP.Logger = slog.New(slog.NewTextHandler(&calls, nil))
		if _, err := New(context.Background(), cfg); !errors.Is(err, oauthsafe.ErrConfig) || calls.Len() != 0 {
			t.Errorf("AuthMethod %q: %v, want ErrConfig before any request (calls: %q)", m, err, calls.String())
		}
	}
}

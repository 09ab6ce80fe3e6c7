package oauthclient

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/validate"
	"golang.org/x/oauth2"
)

var (
	requestPtrType = reflect.TypeOf((*http.Request)(nil))
	requestType    = reflect.TypeOf(http.Request{})
	responseType   = reflect.TypeOf(http.Response{})
	tokenType      = reflect.TypeOf(oauth2.Token{})
	noBodyType     = reflect.TypeOf(http.NoBody)
)

// credentialsIn walks everything reachable from v, unexported fields
// included, and lists what could hand a credential to whoever holds v: an
// http.Request (headers, body, GetBody), an http.Response with a body or a
// request, an oauth2.Token, a string or byte slice holding one of secrets.
func credentialsIn(v any, secrets []string) []string {
	var found []string
	seen := map[uintptr]bool{}
	var walk func(v reflect.Value, path string, depth int)
	walk = func(v reflect.Value, path string, depth int) {
		if !v.IsValid() || depth > 40 {
			return
		}
		switch v.Kind() {
		case reflect.Pointer:
			if v.IsNil() {
				return
			}
			if v.Type() == requestPtrType {
				found = append(found, path+": an *http.Request")
				return
			}
			if seen[v.Pointer()] {
				return
			}
			seen[v.Pointer()] = true
			walk(v.Elem(), path, depth+1)
		case reflect.Interface:
			walk(v.Elem(), path, depth+1)
		case reflect.Struct:
			switch v.Type() {
			case requestType:
				found = append(found, path+": an http.Request")
				return
			case tokenType:
				found = append(found, path+": an oauth2.Token")
				return
			case responseType:
				if b := v.FieldByName("Body"); !b.IsNil() && b.Elem().Type() != noBodyType {
					found = append(found, path+": a response with a body")
				}
				if !v.FieldByName("Request").IsNil() {
					found = append(found, path+": a response with its request")
				}
			}
			for i := 0; i < v.NumField(); i++ {
				walk(v.Field(i), path+"."+v.Type().Field(i).Name, depth+1)
			}
		case reflect.Slice, reflect.Array:
			if v.Type().Elem().Kind() == reflect.Uint8 {
				if v.Kind() == reflect.Slice {
					found = append(found, secretsIn(path, string(v.Bytes()), secrets)...)
				}
				return
			}
			for i := 0; i < v.Len() && i < 1000; i++ {
				walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i), depth+1)
			}
		case reflect.Map:
			for it := v.MapRange(); it.Next(); {
				walk(it.Key(), path+"{key}", depth+1)
				walk(it.Value(), path+"{value}", depth+1)
			}
		case reflect.String:
			found = append(found, secretsIn(path, v.String(), secrets)...)
		}
	}
	walk(reflect.ValueOf(&v).Elem(), "err", 0)
	return found
}

func secretsIn(path, s string, secrets []string) []string {
	var found []string
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			found = append(found, fmt.Sprintf("%s: holds %q", path, sec))
		}
	}
	return found
}

// TestErrorsHoldNoCredential (S19, S30): no error the SDK returns reaches
// a request, a body or a token, by errors.As, errors.Unwrap or any field:
// token endpoint errors of a code exchange (Basic client secret, code,
// code_verifier) and of refreshes (refresh token in the body and GetBody),
// a 200 with an error carrying new tokens, a 5xx, an HTML answer, a
// redirect, a wrapper that fails or panics after the server answered,
// revocation, and the API client's refusals. The *oauth2.RetrieveError
// the docs promise stays reachable, with the status and the cleaned error
// fields only.
func TestErrorsHoldNoCredential(t *testing.T) {
	const clientSecret = "client-secret-in-no-error"
	secrets := []string{clientSecret, base64.StdEncoding.EncodeToString([]byte("client-1:" + clientSecret)),
		"the-code", "code_verifier", "refresh_token=", "AT-secret-value", "RT-secret-value", "AT-new-secret", "RT-new-secret",
		"cookie-secret", "eyJ"}
	jsonAnswer := func(status int, body string) func(w http.ResponseWriter, r *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			http.SetCookie(w, &http.Cookie{Name: "as", Value: "cookie-secret"})
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			io.WriteString(w, body)
		}
	}
	// The server echoes what the request sent (descriptions are scrubbed
	// of the values of the request that caused them).
	echo := `"error_description":"refused RT-secret-value, ` + clientSecret + `"`
	echoCode := `"error_description":"refused the-code, ` + clientSecret + `"`
	type result struct {
		err           error
		retrieveError bool // the docs promise an *oauth2.RetrieveError
	}
	// login logs in through h with the client secret and wrap, and
	// returns the client, the login's tokens and the code_verifier sent.
	login := func(t *testing.T, h *hostileAS, wrap func(http.RoundTripper) http.RoundTripper) (*Client, *Tokens) {
		cfg := h.config()
		cfg.ClientSecret = mustSecret(clientSecret)
		cfg.HTTP.Wrap = wrap
		c, toks := loginWith(t, h, cfg)
		if !strings.HasPrefix(h.lastHeader.Get("Authorization"), "Basic ") {
			t.Fatal("the test needs client_secret_basic")
		}
		return c, toks
	}
	refresh := func(answer func(http.ResponseWriter, *http.Request), wrap func(http.RoundTripper) http.RoundTripper, armed *atomic.Bool) func(t *testing.T) result {
		return func(t *testing.T) result {
			h := newHostileAS(t)
			c, toks := login(t, h, wrap)
			src, err := c.TokenSource(context.Background(), TokenSourceConfig{Store: &tokenstore.Memory{}, Key: "k"}, toks)
			if err != nil {
				t.Fatal(err)
			}
			if answer != nil {
				h.setToken(answer)
			}
			src.Invalidate(toks.OAuth2Token())
			if armed != nil {
				armed.Store(true)
			}
			_, err = src.Token()
			if h.lastForm.Get("refresh_token") != "RT-secret-value" {
				t.Fatalf("the refresh sent %v", h.lastForm)
			}
			return result{err: err}
		}
	}
	var failArmed, panicArmed atomic.Bool
	failing := func(next http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			resp, err := next.RoundTrip(r)
			if err == nil && failArmed.CompareAndSwap(true, false) {
				return resp, fmt.Errorf("tracing failed after %s", resp.Status)
			}
			return resp, err
		})
	}
	panicking := func(next http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			resp, err := next.RoundTrip(r)
			if panicArmed.CompareAndSwap(true, false) {
				panic(resp)
			}
			return resp, err
		})
	}
	api := func(status int, challenge string) func(t *testing.T) result {
		return func(t *testing.T) result {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", challenge)
				w.WriteHeader(status)
			}))
			t.Cleanup(srv.Close)
			pool := x509.NewCertPool()
			pool.AddCert(srv.Certificate())
			src := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "AT-secret-value", TokenType: "Bearer"})
			hc, err := apiclient.New(src, apiclient.Config{AllowedOrigins: []string{srv.URL}, HTTP: strictnet.Config{RootCAs: pool}})
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/me", strings.NewReader("refresh_token=RT-secret-value"))
			_, err = hc.Do(req)
			return result{err: err}
		}
	}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T) result
	}{
		{"code exchange refused", func(t *testing.T) result {
			h := newHostileAS(t)
			h.setToken(jsonAnswer(400, `{"error":"invalid_grant",`+echoCode+`}`))
			cfg := h.config()
			cfg.ClientSecret = mustSecret(clientSecret)
			c, err := New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			p, cb := h.start(t, c)
			secrets = append(secrets, p.p.Verifier)
			_, err = c.Exchange(context.Background(), p, cb)
			if h.lastForm.Get("code_verifier") != p.p.Verifier {
				t.Fatal("the test needs a code_verifier")
			}
			return result{err, true}
		}},
		{"refresh invalid_grant", func(t *testing.T) result {
			r := refresh(jsonAnswer(400, `{"error":"invalid_grant",`+echo+`}`), nil, nil)(t)
			r.retrieveError = true
			return r
		}},
		{"200 with an error and new tokens", func(t *testing.T) result {
			r := refresh(jsonAnswer(200, `{"error":"server_error","error_description":"AT-new-secret","access_token":"AT-new-secret","refresh_token":"RT-new-secret","token_type":"Bearer"}`), nil, nil)(t)
			r.retrieveError = true
			return r
		}},
		{"503", func(t *testing.T) result {
			r := refresh(jsonAnswer(503, `{"error":"temporarily_unavailable",`+echo+`}`), nil, nil)(t)
			r.retrieveError = true
			return r
		}},
		{"HTML 500", refresh(jsonAnswer(500, `<html>RT-secret-value</html>`), nil, nil)},
		{"redirect", refresh(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://elsewhere.example/token?refresh_token=RT-secret-value", http.StatusTemporaryRedirect)
		}, nil, nil)},
		{"wrapper fails after the answer", refresh(nil, failing, &failArmed)},
		{"wrapper panics after the answer", refresh(nil, panicking, &panicArmed)},
		{"revocation refused", func(t *testing.T) result {
			h := newHostileAS(t)
			c, _ := login(t, h, nil)
			return result{err: c.Revoke(context.Background(), "RT-secret-value", "refresh_token")}
		}},
		{"introspection through a panicking wrapper", func(t *testing.T) result {
			h := newHostileAS(t)
			h.set("introspection_endpoint", h.srv.URL+"/token") // answers with tokens
			c, _ := login(t, h, panicking)
			in, err := c.Introspector(validate.IntrospectionConfig{})
			if err != nil {
				t.Fatal(err)
			}
			panicArmed.Store(true)
			_, err = in.Verify(context.Background(), "AT-secret-value")
			if panicArmed.Load() {
				t.Fatal("the wrapper was not reached")
			}
			return result{err: err}
		}},
		{"API insufficient_scope", api(403, `Bearer error="insufficient_scope", scope="admin", error_description="AT-secret-value lacks admin"`)},
		{"API invalid_request", api(400, `Bearer error="invalid_request", error_description="AT-secret-value is malformed"`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.run(t)
			if r.err == nil {
				t.Fatal("no error")
			}
			for _, f := range credentialsIn(r.err, secrets) {
				t.Errorf("%s (%T: %v)", f, r.err, r.err)
			}
			var re *oauth2.RetrieveError
			switch {
			case r.retrieveError && !errors.As(r.err, &re):
				t.Errorf("no *oauth2.RetrieveError in %v", r.err)
			case r.retrieveError && (re.Response == nil || re.Response.StatusCode == 0 || re.ErrorCode == ""):
				t.Errorf("the *oauth2.RetrieveError lost its status or code: %+v", re)
			}
		})
	}
}

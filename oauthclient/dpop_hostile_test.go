package oauthclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/oauthsafe/oauthsafe/internal/dpop"
	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/validate"
	"golang.org/x/oauth2"
)

// proofOf verifies the DPoP header of r with the key in it and returns
// its claims ("" fields when there is none).
func proofOf(t *testing.T, h http.Header) (dpop.ProofClaims, *jose.JSONWebKey) {
	t.Helper()
	v := h.Get("DPoP")
	if v == "" {
		return dpop.ProofClaims{}, nil
	}
	jws, err := jose.ParseSignedCompact(v, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Errorf("proof: %v", err)
		return dpop.ProofClaims{}, nil
	}
	k := jws.Signatures[0].Protected.JSONWebKey
	b, err := jws.Verify(k)
	if err != nil {
		t.Errorf("proof signature: %v", err)
	}
	var c dpop.ProofClaims
	json.Unmarshal(b, &c)
	return c, k
}

func serviceClient(t *testing.T, h *hostileAS, cfg func(*Config)) *Client {
	t.Helper()
	c := h.config()
	c.RedirectURL, c.Scopes = "", []string{"api"}
	c.ClientSecret = mustSecret("service-secret-value")
	if cfg != nil {
		cfg(&c)
	}
	cl, err := New(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// TestDPoPHostileTokenEndpoint is the hostile table for proof-related
// token endpoint input: nonce loops, bad nonces, token types (S11).
func TestDPoPHostileTokenEndpoint(t *testing.T) {
	useNonce := func(nonce string) func(w http.ResponseWriter, r *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("DPoP-Nonce", nonce)
			writeJSON(w, 400, map[string]string{"error": "use_dpop_nonce", "error_description": "nonce needed"})
		}
	}
	dpopToken := func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"access_token": "AT-1", "token_type": "DPoP", "expires_in": 60})
	}
	bearerToken := func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"access_token": "AT-1", "token_type": "Bearer", "expires_in": 60})
	}
	tests := []struct {
		name      string
		dpop      bool
		downgrade bool
		handler   func(t *testing.T) func(w http.ResponseWriter, r *http.Request)
		calls     int32
		want      []error // errors.Is targets; nil: success
		wantType  string
	}{
		{"use_dpop_nonce loop: one retry, then the error", true, false,
			func(*testing.T) func(http.ResponseWriter, *http.Request) { return useNonce("n-1") },
			2, []error{ErrDPoP, ErrAuthorizationServer}, ""},
		{"oversize nonce refused, not retried", true, false,
			func(*testing.T) func(http.ResponseWriter, *http.Request) { return useNonce(strings.Repeat("n", 600)) },
			1, []error{ErrDPoP}, ""},
		{"nonce with a C1 control / bidi override refused", true, false,
			func(*testing.T) func(http.ResponseWriter, *http.Request) { return useNonce("n\u202e\u0085x") },
			1, []error{ErrDPoP}, ""},
		{"nonce with C0 controls: the connection is refused", true, false,
			func(*testing.T) func(http.ResponseWriter, *http.Request) { return useNonce("n\x1b[31m") },
			1, []error{}, ""},
		{"use_dpop_nonce without a nonce: no retry", true, false,
			func(*testing.T) func(http.ResponseWriter, *http.Request) {
				return func(w http.ResponseWriter, r *http.Request) {
					writeJSON(w, 400, map[string]string{"error": "use_dpop_nonce"})
				}
			}, 1, []error{ErrDPoP}, ""},
		{"nonce honoured with exactly one retry", true, false,
			func(t *testing.T) func(http.ResponseWriter, *http.Request) {
				var n atomic.Int32
				return func(w http.ResponseWriter, r *http.Request) {
					c, k := proofOf(t, r.Header)
					if k == nil || c.HTM != "POST" || !strings.HasSuffix(c.HTU, "/token") {
						t.Errorf("bad proof %+v", c)
					}
					if n.Add(1) == 1 {
						if c.Nonce != "" {
							t.Error("first proof has a nonce")
						}
						useNonce("n-2")(w, r)
						return
					}
					if c.Nonce != "n-2" {
						t.Errorf("retry proof nonce %q", c.Nonce)
					}
					dpopToken(w, r)
				}
			}, 2, nil, "DPoP"},
		{"token_type DPoP without a proof (S11)", false, false,
			func(*testing.T) func(http.ResponseWriter, *http.Request) { return dpopToken },
			1, []error{errUnknownTokenType, ErrDPoP}, ""},
		{"Bearer answer to a DPoP request refused", true, false,
			func(*testing.T) func(http.ResponseWriter, *http.Request) { return bearerToken },
			1, []error{ErrDPoP}, ""},
		{"Bearer answer allowed as a downgrade", true, true,
			func(*testing.T) func(http.ResponseWriter, *http.Request) { return bearerToken },
			1, nil, "Bearer"},
		{"server requiring DPoP turns it on (one retry)", false, false,
			func(t *testing.T) func(http.ResponseWriter, *http.Request) {
				return func(w http.ResponseWriter, r *http.Request) {
					if c, k := proofOf(t, r.Header); k == nil || c.Nonce != "n-3" {
						useNonce("n-3")(w, r)
						return
					}
					dpopToken(w, r)
				}
			}, 2, nil, "DPoP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHostileAS(t)
			h.setToken(tt.handler(t))
			c := serviceClient(t, h, func(c *Config) { c.DPoP, c.AllowBearerDowngrade = tt.dpop, tt.downgrade })
			tok, err := c.serviceSource(nil, nil).TokenContext(context.Background())
			if got := h.tokenCalls.Load(); got != tt.calls {
				t.Errorf("%d token requests, want %d", got, tt.calls)
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("err = %v, want it to match %v", err, w)
				}
			}
			if tt.want != nil && err == nil {
				t.Error("no error")
			}
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if tok.TokenType != tt.wantType || (dpop.TokenKey(tok) != nil) != (tt.wantType == "DPoP") {
					t.Errorf("token type %q, key %v", tok.TokenType, dpop.TokenKey(tok))
				}
			}
			if err != nil && strings.Contains(err.Error(), "\x1b") {
				t.Error("error holds raw server text")
			}
			for _, n := range c.nonces.Nonces() {
				if !dpop.ValidNonce(n) {
					t.Errorf("stored bad nonce %q", n)
				}
			}
		})
	}
}

// errWantInvalidRequest marks a row of TestDPoPHostileResource whose error
// must be an *apiclient.InvalidRequestError (matched with errors.As).
var errWantInvalidRequest = errors.New("want *apiclient.InvalidRequestError")

// errWantInsufficientScope marks a row whose error must be a
// *validate.InsufficientScopeError (matched with errors.As).
var errWantInsufficientScope = errors.New("want *validate.InsufficientScopeError")

// TestDPoPHostileResource: the API transport with a DPoP token against
// resources that demand nonces, loop, or send bad ones; DPoP-scheme 400
// and 403 challenges are typed as the Bearer ones are.
func TestDPoPHostileResource(t *testing.T) {
	key, err := dpop.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	tok := dpop.WithKey(&oauth2.Token{AccessToken: "AT-dpop", TokenType: "DPoP", Expiry: time.Now().Add(time.Hour)}, key)
	challenge := func(w http.ResponseWriter, nonce string) {
		w.Header().Set("WWW-Authenticate", `DPoP algs="ES256", error="use_dpop_nonce"`)
		w.Header().Set("DPoP-Nonce", nonce)
		w.WriteHeader(401)
	}
	tests := []struct {
		name    string
		handler func(t *testing.T, n int32, w http.ResponseWriter, r *http.Request)
		hits    int32
		status  int
		err     error
	}{
		{"nonce honoured with exactly one retry", func(t *testing.T, n int32, w http.ResponseWriter, r *http.Request) {
			c, _ := proofOf(t, r.Header)
			if n == 1 {
				challenge(w, "rn-1")
				return
			}
			if c.Nonce != "rn-1" {
				t.Errorf("retry nonce %q", c.Nonce)
			}
			w.WriteHeader(200)
		}, 2, 200, nil},
		{"use_dpop_nonce loop: one retry, then the 401", func(t *testing.T, n int32, w http.ResponseWriter, r *http.Request) {
			challenge(w, "rn-loop")
		}, 2, 401, nil},
		{"oversize nonce refused", func(t *testing.T, n int32, w http.ResponseWriter, r *http.Request) {
			challenge(w, strings.Repeat("x", 4000))
		}, 1, 0, ErrDPoP},
		{"space and bidi override refused", func(t *testing.T, n int32, w http.ResponseWriter, r *http.Request) {
			challenge(w, "a b\u202e")
		}, 1, 0, ErrDPoP},
		{"DPoP insufficient_scope typed", func(t *testing.T, n int32, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `DPoP algs="ES256", error="insufficient_scope", scope="items.write", error_description="needs write for AT-dpop"`)
			w.WriteHeader(403)
		}, 1, 0, errWantInsufficientScope},
		{"DPoP invalid_request typed", func(t *testing.T, n int32, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `DPoP error="invalid_request", error_description="bad"`)
			w.WriteHeader(400)
		}, 1, 0, errWantInvalidRequest},
		{"DPoP challenge preferred over Bearer", func(t *testing.T, n int32, w http.ResponseWriter, r *http.Request) {
			w.Header().Add("WWW-Authenticate", `Bearer error="invalid_request"`)
			w.Header().Add("WWW-Authenticate", `DPoP error="insufficient_scope", scope="items.write"`)
			w.WriteHeader(403)
		}, 1, 0, errWantInsufficientScope},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			var mu sync.Mutex
			var jtis []string
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := hits.Add(1)
				c, k := proofOf(t, r.Header)
				if k == nil || r.Header.Get("Authorization") != "DPoP AT-dpop" || c.ATH != dpop.AccessTokenHash("AT-dpop") ||
					c.HTM != "POST" || c.HTU != "https://"+r.Host+"/v1/items" {
					t.Errorf("request: auth %q, proof %+v", r.Header.Get("Authorization"), c)
				}
				if b, _ := io.ReadAll(r.Body); string(b) != "payload" {
					t.Errorf("body %q", b)
				}
				mu.Lock()
				jtis = append(jtis, c.JTI)
				mu.Unlock()
				tt.handler(t, n, w, r)
			}))
			defer srv.Close()
			pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
			hc, err := apiclient.New(oauth2.StaticTokenSource(tok), apiclient.Config{AllowedOrigins: []string{srv.URL}, HTTP: strictnet.Config{RootCAs: pool}})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Post(srv.URL+"/v1/items?cursor=abc#frag", "text/plain", strings.NewReader("payload"))
			if tt.err != nil {
				var ie *apiclient.InvalidRequestError
				var se *validate.InsufficientScopeError
				var ok bool
				switch tt.err {
				case errWantInvalidRequest:
					ok = errors.As(err, &ie)
				case errWantInsufficientScope:
					ok = errors.As(err, &se)
				default:
					ok = errors.Is(err, tt.err)
				}
				if !ok {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				if errors.As(err, &se) && (len(se.Scope) != 1 || se.Scope[0] != "items.write" || strings.Contains(se.Description, "AT-dpop")) {
					t.Fatalf("insufficient scope %+v", se)
				}
			} else if err != nil {
				t.Fatal(err)
			} else {
				resp.Body.Close()
				if resp.StatusCode != tt.status {
					t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
				}
			}
			if hits.Load() != tt.hits {
				t.Errorf("%d requests, want %d", hits.Load(), tt.hits)
			}
			if len(jtis) == 2 && jtis[0] == jtis[1] {
				t.Error("the retry reused the proof")
			}
		})
	}
}

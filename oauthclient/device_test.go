package oauthclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Device grant tests: the happy path, approval and denial against the real
// zitadel server; slow_down, expired_token, access_denied, the code's own
// expiry and malformed answers against a hostile server.

// scripted sequence of token answers; it records when each poll arrived.
type deviceAS struct {
	*hostileAS
	mu       sync.Mutex
	daBody   map[string]any
	script   []string // error codes to answer in turn; "" = tokens
	polls    []time.Time
	daForms  int
	lastCode string
}

func newDeviceAS(t *testing.T) *deviceAS {
	h := newHostileAS(t)
	d := &deviceAS{hostileAS: h, daBody: map[string]any{
		"device_code": "DEVICE-CODE-secret-123", "user_code": "WDJB-MJHT",
		"verification_uri":          h.srv.URL + "/device",
		"verification_uri_complete": h.srv.URL + "/device?user_code=WDJB-MJHT",
		"expires_in":                600, "interval": 1,
	}}
	dev := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		d.mu.Lock()
		d.daForms++
		body := d.daBody
		d.mu.Unlock()
		if r.PostForm.Get("client_id") != "client-1" || r.PostForm.Get("scope") != "openid profile" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(dev.Close)
	h.set("device_authorization_endpoint", dev.URL+"/device_authorization")
	h.setToken(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.polls = append(d.polls, time.Now())
		d.lastCode = r.PostForm.Get("device_code")
		var code string
		if len(d.script) > 0 {
			code, d.script = d.script[0], d.script[1:]
		}
		d.mu.Unlock()
		if r.PostForm.Get("grant_type") != deviceGrantType {
			code = "unsupported_grant_type"
		}
		if code != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":%q}`, code)
			return
		}
		// No nonce in the device grant: the ID token has none.
		h.writeTokens(w, map[string]any{"id_token": h.idToken(nopTB{}, nil)})
	})
	return d
}

func (d *deviceAS) setScript(codes ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.script = codes
}

func (d *deviceAS) gaps() []time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []time.Duration
	for i := 1; i < len(d.polls); i++ {
		out = append(out, d.polls[i].Sub(d.polls[i-1]))
	}
	return out
}

func TestDeviceGrantHostile(t *testing.T) {
	t.Parallel()
	t.Run("pending then slow_down waits 5 s longer", func(t *testing.T) {
		t.Parallel()
		d := newDeviceAS(t)
		c := d.client(t)
		ctx := context.Background()
		da, err := c.DeviceAuth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		d.setScript("authorization_pending", "slow_down", "")
		tok, err := c.DeviceToken(ctx, da)
		if err != nil {
			t.Fatal(err)
		}
		if tok.OAuth2Token().AccessToken != "AT-secret-value" || tok.Subject() != "user-1" {
			t.Fatalf("tokens: %v", tok)
		}
		g := d.gaps()
		if len(g) != 2 {
			t.Fatalf("%d polls, want 3", len(g)+1)
		}
		if g[0] < 900*time.Millisecond {
			t.Errorf("poll after authorization_pending came after %v, want the 1 s interval", g[0])
		}
		if g[1] < 5900*time.Millisecond {
			t.Errorf("poll after slow_down came after %v, want 1 s + 5 s", g[1])
		}
		if d.lastCode != "DEVICE-CODE-secret-123" {
			t.Error("device code not sent")
		}
	})

	t.Run("expired_token", func(t *testing.T) {
		t.Parallel()
		d := newDeviceAS(t)
		c := d.client(t)
		da, err := c.DeviceAuth(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		d.setScript("authorization_pending", "expired_token", "")
		_, err = c.DeviceToken(context.Background(), da)
		var ae *AuthError
		if !errors.Is(err, errDeviceExpired) || !errors.Is(err, ErrFlowExpired) || !errors.As(err, &ae) || ae.Code != "expired_token" {
			t.Fatalf("err = %v, want ErrFlowExpired wrapping expired_token", err)
		}
		if n := len(d.gaps()) + 1; n != 2 {
			t.Errorf("%d polls, want 2 (no poll after expired_token)", n)
		}
	})

	t.Run("access_denied", func(t *testing.T) {
		t.Parallel()
		d := newDeviceAS(t)
		c := d.client(t)
		da, err := c.DeviceAuth(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		d.setScript("access_denied", "")
		_, err = c.DeviceToken(context.Background(), da)
		var ae *AuthError
		if !errors.As(err, &ae) || ae.Code != "access_denied" || !errors.Is(err, ErrAuthorizationServer) {
			t.Fatalf("err = %v, want an access_denied AuthError", err)
		}
		if n := d.tokenCalls.Load(); n != 1 {
			t.Errorf("%d polls, want 1", n)
		}
	})

	t.Run("the code's expires_in stops polling", func(t *testing.T) {
		t.Parallel()
		d := newDeviceAS(t)
		var mu sync.Mutex
		now := time.Now()
		cfg := d.config()
		cfg.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		c, err := New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		da, err := c.DeviceAuth(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if want := now.Add(600 * time.Second); !da.Expiry.Equal(want) {
			t.Fatalf("expiry %v, want %v", da.Expiry, want)
		}
		// The server would keep saying pending forever; after one poll the
		// clock passes the code's expiry.
		d.setScript("authorization_pending", "authorization_pending", "authorization_pending", "authorization_pending")
		go func() {
			for d.tokenCalls.Load() < 1 {
				time.Sleep(10 * time.Millisecond)
			}
			mu.Lock()
			now = now.Add(601 * time.Second)
			mu.Unlock()
		}()
		_, err = c.DeviceToken(context.Background(), da)
		if !errors.Is(err, errDeviceExpired) || !errors.Is(err, ErrFlowExpired) {
			t.Fatalf("err = %v, want ErrFlowExpired", err)
		}
		if n := d.tokenCalls.Load(); n > 2 {
			t.Errorf("%d polls after the expiry", n)
		}
	})

	t.Run("wider scope than requested is refused", func(t *testing.T) {
		t.Parallel()
		d := newDeviceAS(t)
		c := d.client(t)
		da, err := c.DeviceAuth(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		d.setToken(func(w http.ResponseWriter, r *http.Request) {
			d.writeTokens(w, map[string]any{"scope": "openid profile admin"})
		})
		if _, err := c.DeviceToken(context.Background(), da); !errors.Is(err, errScopeWidened) {
			t.Fatalf("err = %v, want errScopeWidened", err)
		}
	})

	t.Run("forged ID token is refused", func(t *testing.T) {
		t.Parallel()
		d := newDeviceAS(t)
		c := d.client(t)
		da, err := c.DeviceAuth(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		d.setToken(func(w http.ResponseWriter, r *http.Request) {
			d.writeTokens(w, map[string]any{"id_token": d.idToken(t, map[string]any{"aud": "another-client"})})
		})
		if _, err := c.DeviceToken(context.Background(), da); !errors.Is(err, ErrIDToken) {
			t.Fatalf("err = %v, want ErrIDToken", err)
		}
	})
}

func TestDeviceAuthMalformed(t *testing.T) {
	cases := []struct {
		name    string
		body    map[string]any
		wantErr error
	}{
		{"no device_code", map[string]any{"device_code": nil}, ErrMalformedResponse},
		{"no user_code", map[string]any{"user_code": nil}, ErrMalformedResponse},
		{"http verification_uri", map[string]any{"verification_uri": "http://127.0.0.1/device"}, ErrMalformedResponse},
		{"javascript verification_uri", map[string]any{"verification_uri": "javascript:alert(1)"}, ErrMalformedResponse},
		{"interval as text", map[string]any{"interval": "soon"}, ErrMalformedResponse},
		{"user_code with control characters", map[string]any{"user_code": "AB\x1b[2JCD"}, ErrMalformedResponse},
		{"error inside 200", map[string]any{"error": "invalid_client"}, ErrAuthorizationServer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := newDeviceAS(t)
			for k, v := range tc.body {
				if v == nil {
					delete(d.daBody, k)
				} else {
					d.daBody[k] = v
				}
			}
			c := d.client(t)
			da, err := c.DeviceAuth(context.Background())
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if da != nil {
				t.Fatal("a DeviceAuthorization was returned with the error")
			}
			if strings.Contains(fmt.Sprint(err), "DEVICE-CODE") {
				t.Error("error string contains the device code")
			}
		})
	}

	t.Run("defaults and caps", func(t *testing.T) {
		d := newDeviceAS(t)
		delete(d.daBody, "interval")
		d.daBody["expires_in"] = 1e9
		delete(d.daBody, "verification_uri_complete")
		c := d.client(t)
		da, err := c.DeviceAuth(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if da.Interval != 5*time.Second {
			t.Errorf("interval %v, want the RFC 8628 default 5 s", da.Interval)
		}
		if life := time.Until(da.Expiry); life > maxDeviceCodeLifetime {
			t.Errorf("lifetime %v exceeds the cap", life)
		}
	})

	t.Run("no device endpoint", func(t *testing.T) {
		h := newHostileAS(t)
		if _, err := h.client(t).DeviceAuth(context.Background()); !errors.Is(err, ErrNoEndpoint) {
			t.Fatalf("err = %v, want ErrNoEndpoint", err)
		}
	})
}

func TestDeviceAuthorizationRedacts(t *testing.T) {
	d := newDeviceAS(t)
	da, err := d.client(t).DeviceAuth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "da", da)
	j, _ := json.Marshal(da)
	for _, s := range []string{fmt.Sprintf("%v", da), fmt.Sprintf("%+v", da), fmt.Sprintf("%#v", da), fmt.Sprintf("%q", da), fmt.Sprintf("%s", *da), logged.String(), string(j)} {
		if strings.Contains(s, "DEVICE-CODE") {
			t.Errorf("device code printed: %s", s)
		}
	}
	if !strings.Contains(fmt.Sprint(da), "WDJB-MJHT") {
		t.Error("the user code, meant for display, should be shown")
	}
}

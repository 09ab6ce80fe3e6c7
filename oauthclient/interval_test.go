package oauthclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/strictnet"
)

// TestDeviceIntervalBounds (S24): whatever interval a server announces,
// the polling interval stays within 1 s..60 s (5 s for nonsense), never
// wraps, and slow_down stays within the clamp.
func TestDeviceIntervalBounds(t *testing.T) {
	cases := []struct {
		raw  string
		want time.Duration
	}{
		{`8788434705084852`, maxDeviceInterval}, // overflowed to ~2 µs before
		{`1e308`, maxDeviceInterval},
		{`9223372036854775807`, maxDeviceInterval},
		{`-5`, defaultDeviceInterval},
		{`0`, defaultDeviceInterval},
		{`0.001`, defaultDeviceInterval},
		{`2.5`, 2500 * time.Millisecond},
		{`"7"`, 7 * time.Second},
		{`"1e30"`, maxDeviceInterval},
		{`null`, defaultDeviceInterval},
		{``, defaultDeviceInterval},
	}
	for _, c := range cases {
		var raw json.RawMessage
		if c.raw != "" {
			raw = json.RawMessage(c.raw)
		}
		got, err := deviceInterval(raw)
		if err != nil || got != c.want {
			t.Errorf("interval %s: %v, %v; want %v", c.raw, got, err, c.want)
		}
	}
	for _, bad := range []string{`"soon"`, `[]`, `{}`, `true`} {
		if _, err := deviceInterval(json.RawMessage(bad)); err == nil {
			t.Errorf("interval %s accepted", bad)
		}
	}
	for _, d := range []time.Duration{-time.Hour, 0, time.Nanosecond, time.Duration(1<<62 + 7)} {
		if got := clampInterval(d); got < minDeviceInterval || got > maxDeviceInterval {
			t.Errorf("clampInterval(%v) = %v", d, got)
		}
	}
	iv := maxDeviceInterval
	for i := 0; i < 10; i++ {
		iv = clampInterval(iv + slowDownStep)
	}
	if iv != maxDeviceInterval {
		t.Errorf("slow_down past the cap: %v", iv)
	}
}

// TestDeviceIntervalBoundsPolls drives DeviceToken against a server that
// announces hostile intervals and always answers slow_down or
// authorization_pending: over 2.5 s the token endpoint sees at most 3
// polls (1 s minimum), never thousands.
func TestDeviceIntervalBoundsPolls(t *testing.T) {
	for _, iv := range []any{8788434705084852, -1, 0.0001, "0.0001", 1} {
		var polls atomic.Int64
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if r.URL.Path == "/device" {
				json.NewEncoder(w).Encode(map[string]any{"device_code": "dc", "user_code": "ABCD", "verification_uri": "https://x.example/", "expires_in": 600, "interval": iv})
				return
			}
			polls.Add(1)
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"authorization_pending"}`))
		}))
		cs := &countingServer{Server: srv}
		c, err := New(context.Background(), staticConfig(cs, strictnet.Config{RootCAs: cs.pool()}))
		if err != nil {
			t.Fatal(err)
		}
		da, err := c.DeviceAuth(context.Background())
		if err != nil {
			t.Fatalf("interval %v: %v", iv, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
		_, err = c.DeviceToken(ctx, da)
		cancel()
		srv.Close()
		if !errors.Is(err, context.DeadlineExceeded) || polls.Load() > 3 {
			t.Errorf("interval %v: %d polls in 2.5 s (err %v)", iv, polls.Load(), err)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthclient"
)

// TestDemo runs the example's login against the embedded server: the
// signed-in page greets alice, and no token of the login (access, refresh,
// ID token) appears in the output.
func TestDemo(t *testing.T) {
	var mu sync.Mutex
	var logins []*oauthclient.Tokens
	demoTokensSeen = func(tk *oauthclient.Tokens) { mu.Lock(); logins = append(logins, tk); mu.Unlock() }
	t.Cleanup(func() { demoTokensSeen = nil })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"-demo"}, &out, &errb); err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, &out, &errb)
	}
	if want := "GET / -> 200 OK Hello, sub-alice"; !strings.HasPrefix(out.String(), want) {
		t.Errorf("stdout = %q, want prefix %q", &out, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logins) != 1 {
		t.Fatalf("want exactly one login, got %d", len(logins))
	}
	all := out.String() + errb.String()
	if strings.Contains(all, "eyJ") {
		t.Error("output contains a JWT")
	}
	tk := logins[0]
	for name, v := range map[string]string{"access token": tk.AccessToken(), "refresh token": tk.RefreshToken(), "ID token": tk.RawIDToken()} {
		if v != "" && strings.Contains(all, v) {
			t.Errorf("output contains the %s", name)
		}
	}
	if tk.AccessToken() == "" || tk.RawIDToken() == "" {
		t.Error("the login returned no access token or ID token")
	}
}

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestDemo runs the example against the embedded server: no stored refresh
// token, so it logs in through the loopback receiver (the "browser" signs
// in programmatically), then calls the userinfo endpoint with the access
// token held in memory. Neither output shows a token.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"-demo"}, &out, &errb); err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, &out, &errb)
	}
	if !strings.Contains(errb.String(), "logged in as") || !strings.Contains(errb.String(), "Waiting for the callback on 127.0.0.1:") {
		t.Errorf("stderr lacks the login and the authorization URL:\n%s", &errb)
	}
	if !strings.Contains(out.String(), "-> 200 OK") || !strings.Contains(out.String(), `"sub"`) {
		t.Errorf("the userinfo call did not succeed:\n%s", &out)
	}
	all := out.String() + errb.String()
	for _, bad := range []string{"eyJ", "access_token", "refresh_token", "code="} {
		if strings.Contains(all, bad) {
			t.Errorf("output contains %q", bad)
		}
	}
}

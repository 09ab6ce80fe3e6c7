package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDemo runs the example against the embedded server and the
// introspecting API: both calls succeed with one cached token, and neither
// output shows a token.
func TestDemo(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	demoTokenSeen = func(tok string) { mu.Lock(); seen = append(seen, tok); mu.Unlock() }
	t.Cleanup(func() { demoTokenSeen = nil })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"-demo"}, &out, &errb); err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, &out, &errb)
	}
	if n := strings.Count(out.String(), "/v1/reports -> 200 OK"); n != 2 {
		t.Errorf("want 2 successful calls, got %d:\n%s", n, &out)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != seen[1] {
		t.Errorf("the API should have seen the same cached token twice, saw %d tokens", len(seen))
	}
	all := out.String() + errb.String()
	if strings.Contains(all, "eyJ") {
		t.Error("output contains a JWT")
	}
	for _, tok := range seen {
		if tok == "" || strings.Contains(all, tok) {
			t.Error("output contains the access token (or the API saw an empty one)")
		}
	}
}

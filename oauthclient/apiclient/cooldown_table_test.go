package apiclient

import (
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// funcSource and sliceSource are token sources whose values cannot be map
// keys (a func; a struct holding a slice).
type funcSource func() (*oauth2.Token, error)

func (f funcSource) Token() (*oauth2.Token, error) { return f() }

type sliceSource struct{ toks []string }

func (s sliceSource) Token() (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: s.toks[0]}, nil
}

type ptrSource struct{ n int }

func (*ptrSource) Token() (*oauth2.Token, error) { return &oauth2.Token{AccessToken: "t"}, nil }

// TestCooldownTable (S24): what the cooldowns doc comment promises. One
// entry per source; a source whose value cannot be a map key shares one
// entry with every other such source (stricter, never looser) instead of
// panicking; entries older than the cooldown are dropped as the table
// grows, so it holds at most the sources invalidated within one cooldown.
func TestCooldownTable(t *testing.T) {
	var c cooldowns
	now := time.Now().UnixNano()
	sec := int64(time.Second)
	f1 := funcSource(func() (*oauth2.Token, error) { return nil, nil })
	f2 := funcSource(func() (*oauth2.Token, error) { return nil, nil })
	if !c.allow(f1, now) {
		t.Fatal("the first invalidation of a func source was refused")
	}
	if c.allow(f1, now+sec) || c.allow(f2, now+sec) || c.allow(sliceSource{toks: []string{"x"}}, now+sec) {
		t.Fatal("a source that cannot be a map key got its own cooldown: the shared entry must hold for every such source")
	}
	if !c.allow(f2, now+int64(invalidationCooldown)) {
		t.Fatal("no invalidation after the cooldown")
	}
	a, b := &ptrSource{1}, &ptrSource{2}
	if !c.allow(a, now) || !c.allow(b, now) || c.allow(a, now+sec) {
		t.Fatal("pointer sources do not have a cooldown each")
	}
	var d cooldowns
	for i := range 300 {
		d.allow(&ptrSource{i}, now)
	}
	if len(d.last) != 300 {
		t.Fatalf("%d entries for 300 sources within one cooldown", len(d.last))
	}
	d.allow(&ptrSource{-1}, now+int64(invalidationCooldown))
	if len(d.last) != 1 {
		t.Fatalf("%d entries after the cooldown, want the newest only", len(d.last))
	}
}

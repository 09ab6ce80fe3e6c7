package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthclient"
)

// TestCredentialBinding: the binding separates every pair of credentials
// (also those whose concatenations are equal) and depends on the agent's
// key; the started agent's environment holds no credential variable.
func TestCredentialBinding(t *testing.T) {
	k1, k2 := []byte("key-one"), []byte("key-two")
	seen := map[string][2]string{}
	for _, c := range [][2]string{{"", ""}, {"a", ""}, {"", "a"}, {"ab", "c"}, {"a", "bc"}, {"pass", "secret"}} {
		b := credentialBinding(k1, c[0], c[1])
		if prev, ok := seen[b]; ok {
			t.Fatalf("%q and %q bind alike", prev, c)
		}
		seen[b] = c
		if b == credentialBinding(k2, c[0], c[1]) {
			t.Fatalf("%q binds alike under two keys", c)
		}
	}
	env := withoutCredentials([]string{"PATH=/bin", envClientSecret + "=s", envFilePassphrase + "=p", envClientSecret + "X=keep"})
	if !slices.Equal(env, []string{"PATH=/bin", envClientSecret + "X=keep"}) {
		t.Fatalf("withoutCredentials = %q", env)
	}
	get := callerEnv(func(k string) string { return "agent's " + k }, "pass", "secret")
	if get(envFilePassphrase) != "pass" || get(envClientSecret) != "secret" || get("PATH") != "agent's PATH" {
		t.Fatal("callerEnv does not give the caller's credentials")
	}
	if get := callerEnv(func(k string) string { return "agent's " + k }, "", ""); get(envClientSecret) != "" || get(envFilePassphrase) != "" {
		t.Fatal("callerEnv falls back to the agent's own credentials")
	}
}

// TestAgentEvictsLeastRecentlyUsed: at most maxEntriesPerProfile sources
// per profile; the least recently used is dropped, other profiles' stay,
// and forget drops all of a profile's.
func TestAgentEvictsLeastRecentlyUsed(t *testing.T) {
	a := &agent{entries: map[string]*agentEntry{}}
	src := func() *oauthclient.TokenSource {
		// A source whose every Token call fails: only its identity matters here.
		return new(oauthclient.Client).ClientCredentials(oauthclient.GrantOptions{})
	}
	add := func(name, cred string, used int64) {
		ent := &agentEntry{name: name, credential: cred, src: src()}
		ent.lastUse.Store(used)
		a.entries[entryKey(name, cred)] = ent
	}
	add("other", "x", 0)
	for i := range maxEntriesPerProfile + 2 {
		add("p", string(rune('a'+i)), int64(100-i)) // "a" is the most recent
		a.mu.Lock()
		a.evictLocked(context.Background(), "p")
		a.mu.Unlock()
	}
	var kept []string
	for _, ent := range a.entries {
		if ent.name == "p" {
			kept = append(kept, ent.credential)
		}
	}
	slices.Sort(kept)
	if want := []string{"a", "b", "c", "d"}[:maxEntriesPerProfile]; !slices.Equal(kept, want) {
		t.Fatalf("kept %q, want the %d most recently used %q", kept, maxEntriesPerProfile, want)
	}
	if a.entries[entryKey("other", "x")] == nil {
		t.Fatal("another profile's source was evicted")
	}
	a.forget(context.Background(), "p")
	if len(a.entries) != 1 {
		t.Fatalf("after forget: %d entries, want the other profile's only", len(a.entries))
	}
	time.Sleep(10 * time.Millisecond) // the closes run in the background
}

package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe/oauthtest"
)

// statusText parses `oauthsafe status` into label -> value.
func statusText(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// TestStatusAfterLogout: `status` says the same in text and in --json, field
// by field (the subject as the same cleaned string, unquoted in both), and
// the truth after logout: exit 3 from both, no "Logged in" line and no
// logged_in_at, the refresh token absent, and absent values omitted from
// the JSON (no empty lists), as its help documents.
func TestStatusAfterLogout(t *testing.T) {
	c := newCLI(t, oauthtest.Options{})
	mustLogin(t, c)
	compare := func(when string, wantCode int) (map[string]string, map[string]any) {
		t.Helper()
		code, out, _ := c.run("status")
		jcode, jout, _ := c.run("status", "--json")
		var js map[string]any
		if err := json.Unmarshal([]byte(jout), &js); err != nil {
			t.Fatalf("%s: --json: %v", when, err)
		}
		if code != wantCode || jcode != wantCode {
			t.Fatalf("%s: exit %d (text) and %d (json), want %d", when, code, jcode, wantCode)
		}
		txt := statusText(out)
		join := func(k string) string {
			l, _ := js[k].([]any)
			var s []string
			for _, v := range l {
				s = append(s, v.(string))
			}
			return strings.Join(s, " ")
		}
		for label, key := range map[string]string{"Profile": "profile", "Issuer": "issuer", "Client ID": "client_id", "Subject": "subject", "Agent": "agent"} {
			if jv, _ := js[key].(string); txt[label] != jv {
				t.Errorf("%s: %s is %q in text, %q in JSON", when, label, txt[label], jv)
			}
		}
		if txt["Requested"] != join("scopes_requested") {
			t.Errorf("%s: requested scopes %q vs %q", when, txt["Requested"], join("scopes_requested"))
		}
		for k, v := range js {
			if l, ok := v.([]any); ok && len(l) == 0 {
				t.Errorf("%s: JSON %s is an empty list; absent values are omitted", when, k)
			}
		}
		return txt, js
	}
	txt, js := compare("logged in", exitOK)
	if txt["Logged in"] == "" || js["logged_in_at"] != txt["Logged in"] || js["refresh_token"] != "present" || strings.ContainsAny(txt["Subject"], `"`) {
		t.Fatalf("logged in: text %v json %v", txt, js)
	}
	if code, _, stderr := c.run("logout"); code != exitOK {
		t.Fatalf("logout: %s", stderr)
	}
	txt, js = compare("after logout", exitLoginRequired)
	if _, ok := txt["Logged in"]; ok || js["logged_in_at"] != nil {
		t.Fatalf("after logout status still says logged in: text %v json %v", txt, js)
	}
	if js["refresh_token"] != "absent" || !strings.Contains(txt["Refresh"], "not logged in") || js["scopes_granted"] != nil || js["resources"] != nil {
		t.Fatalf("after logout: text %v json %v", txt, js)
	}
}

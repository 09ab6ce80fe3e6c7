package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe/oauthtest"
)

// TestAccountsAndSwitch: two accounts (alice under "default", bob under
// "work", each keyed by issuer, client and subject in the keyring) are
// listed by `accounts` with the active one marked; `switch` (by profile
// name or by subject) changes which one `token` and `status` use without
// --profile, and each gets its own account's token; switching to an
// unknown name fails and changes nothing.
func TestAccountsAndSwitch(t *testing.T) {
	c := newCLI(t, oauthtest.Options{})
	mustLogin(t, c)
	c.user = "bob"
	mustLogin(t, c, "--profile", "work")
	c.user = ""
	alice, bob := oauthtest.Subject("alice"), oauthtest.Subject("bob")

	list := func() []account {
		t.Helper()
		code, out, stderr := c.run("accounts", "--json")
		if code != exitOK {
			t.Fatalf("accounts: %d %s", code, stderr)
		}
		var a []account
		if err := json.Unmarshal([]byte(out), &a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	active := func() string {
		for _, a := range list() {
			if a.Active {
				return a.Profile
			}
		}
		return ""
	}
	accts := list()
	if len(accts) != 2 || accts[0].Profile != "default" || accts[0].Subject != alice || accts[1].Profile != "work" || accts[1].Subject != bob {
		t.Fatalf("accounts: %+v", accts)
	}
	if active() != "default" {
		t.Fatalf("active = %q before any switch, want default", active())
	}
	_, text, _ := c.run("accounts")
	if !strings.Contains(text, "* default") || !strings.Contains(text, "  work") || !strings.Contains(text, bob) {
		t.Fatalf("accounts text:\n%s", text)
	}
	subjectOfToken := func() string {
		t.Helper()
		_, st := c.statusJSON()
		s, _ := st["subject"].(string)
		return s
	}
	if subjectOfToken() != alice {
		t.Fatal("status before switch is not alice's")
	}
	aliceTok := c.tokens(1)[0]

	if code, _, stderr := c.run("switch", "work"); code != exitOK {
		t.Fatalf("switch work: %s", stderr)
	}
	if active() != "work" || subjectOfToken() != bob {
		t.Fatalf("after switch work: active %q, status subject %q", active(), subjectOfToken())
	}
	bobTok := c.tokens(1)[0]
	if bobTok == aliceTok || c.userinfoSubject(bobTok) != bob {
		t.Fatal("token after switch is not bob's")
	}
	if code, _, stderr := c.run("switch", alice); code != exitOK || active() != "default" {
		t.Fatalf("switch by subject: %d %s", code, stderr)
	}
	if code, _, _ := c.run("switch", "nobody"); code != exitError || active() != "default" {
		t.Fatal("switch to an unknown account changed the active one or did not fail")
	}
	if code, _, _ := c.run("switch"); code != exitUsage {
		t.Fatal("switch without a name is not a usage error")
	}
}

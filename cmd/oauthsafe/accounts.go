package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

const accountsHelp = `
Usage: oauthsafe accounts [--json]

Lists the accounts saved by login, one profile each (keyed by issuer,
client and subject), on stdout: the profile name, the subject, the issuer
and the client id, whether a login is stored, and a "*" before the active
profile, which every command uses when --profile is not given. It makes no
request and reads no token. --json prints a list of objects with the
fields profile, active, issuer, client_id, subject and logged_in_at
(absent values omitted).

Examples:
  oauthsafe accounts
  oauthsafe switch work
`

const switchHelp = `
Usage: oauthsafe switch PROFILE|SUBJECT

Makes PROFILE the active account: the one every command uses when
--profile is not given. SUBJECT picks the one profile logged in as that
subject. The choice is kept in the user config directory (mode 0600).

Examples:
  oauthsafe switch work
  oauthsafe accounts
`

// activeFile names the active profile.
const activeFile = "active"

// currentProfile is the profile commands use without --profile: the one
// made active by switch, else "default".
func currentProfile() string {
	d, err := profileDir()
	if err != nil {
		return defaultProfile
	}
	b, err := os.ReadFile(filepath.Join(d, activeFile))
	if err != nil {
		return defaultProfile
	}
	name := strings.TrimSpace(string(b))
	if !profileName.MatchString(name) {
		return defaultProfile
	}
	return name
}

// account is one saved profile, as accounts shows it.
type account struct {
	Profile    string `json:"profile"`
	Active     bool   `json:"active"`
	Issuer     string `json:"issuer"`
	ClientID   string `json:"client_id"`
	Subject    string `json:"subject,omitempty"`
	LoggedInAt string `json:"logged_in_at,omitempty"`
}

// listAccounts reads every profile in the profile directory.
func listAccounts() ([]account, error) {
	d, err := profileDir()
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(d)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	active := currentProfile()
	var out []account
	for _, ent := range entries {
		name, ok := strings.CutSuffix(ent.Name(), ".json")
		if !ok || !profileName.MatchString(name) {
			continue
		}
		p, err := loadProfile(name)
		if err != nil {
			continue // not a profile (a metadata cache) or unreadable
		}
		a := account{Profile: name, Active: name == active, Issuer: p.Issuer, ClientID: p.ClientID, Subject: clean(p.Subject)}
		if !p.LoggedInAt.IsZero() {
			a.LoggedInAt = p.LoggedInAt.UTC().Format("2006-01-02T15:04:05Z07:00")
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Profile < out[j].Profile })
	return out, nil
}

func runAccounts(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("accounts", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print a JSON list")
	fs.Usage = usageFunc(e, fs, accountsHelp)
	if code, ok := parseFlags(e, fs, args); !ok {
		return code
	}
	accts, err := listAccounts()
	if err != nil {
		return e.fail(err)
	}
	if *asJSON {
		if accts == nil {
			accts = []account{}
		}
		b, _ := json.MarshalIndent(accts, "", "  ")
		fmt.Fprintln(e.stdout, string(b))
		return exitOK
	}
	if len(accts) == 0 {
		e.errorf("no account yet; run `oauthsafe login`")
		return exitLoginRequired
	}
	for _, a := range accts {
		mark := " "
		if a.Active {
			mark = "*"
		}
		who := a.Subject
		if who == "" {
			who = "(no subject)"
		}
		state := "logged in"
		if a.LoggedInAt == "" {
			state = "logged out"
		}
		fmt.Fprintf(e.stdout, "%s %-12s %s at %s (client %s, %s)\n", mark, a.Profile, who, clean(a.Issuer), clean(a.ClientID), state)
	}
	return exitOK
}

func runSwitch(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("switch", flag.ContinueOnError)
	fs.Usage = usageFunc(e, fs, switchHelp)
	if code, ok := parseFlagsN(e, fs, args, 1); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return e.usageError("switch", "name the profile (or subject) to switch to")
	}
	want := fs.Arg(0)
	accts, err := listAccounts()
	if err != nil {
		return e.fail(err)
	}
	var match []string
	for _, a := range accts {
		if a.Profile == want {
			match = []string{a.Profile}
			break
		}
		if a.Subject == want {
			match = append(match, a.Profile)
		}
	}
	switch len(match) {
	case 0:
		e.errorf("no profile or subject %q; run `oauthsafe accounts` to list them", clean(want))
		return exitError
	case 1:
	default:
		e.errorf("subject %q is logged in under several profiles (%s); name the profile", clean(want), strings.Join(match, ", "))
		return exitError
	}
	d, err := profileDir()
	if err != nil {
		return e.fail(err)
	}
	if err := os.MkdirAll(d, 0o700); err != nil {
		return e.fail(err)
	}
	tmp := filepath.Join(d, activeFile+".tmp")
	if err := os.WriteFile(tmp, []byte(match[0]+"\n"), 0o600); err != nil {
		return e.fail(err)
	}
	if err := os.Rename(tmp, filepath.Join(d, activeFile)); err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.stderr, "Switched to profile %q.\n", match[0])
	return exitOK
}

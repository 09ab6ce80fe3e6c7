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

// accountsOptions are the flags of `oauthsafe accounts`.
type accountsOptions struct {
	asJSON bool
}

func runAccounts(ctx context.Context, e *env, args []string) int {
	o, code, ok := parseAccountsOptions(e, args)
	if !ok {
		return code
	}
	accts, err := listAccounts()
	if err != nil {
		return e.fail(err)
	}
	if o.asJSON {
		printAccountsJSON(e, accts)
		return exitOK
	}
	if len(accts) == 0 {
		e.errorf("no account yet; run `oauthsafe login`")
		return exitLoginRequired
	}
	printAccounts(e, accts)
	return exitOK
}

// parseAccountsOptions parses accounts's flags; ok is false with the exit
// code when the command ends there (--help, a usage error).
func parseAccountsOptions(e *env, args []string) (o *accountsOptions, code int, ok bool) {
	o = &accountsOptions{}
	fs := flag.NewFlagSet("accounts", flag.ContinueOnError)
	fs.BoolVar(&o.asJSON, "json", false, "print a JSON list")
	fs.Usage = usageFunc(e, fs, accountsHelp)
	if code, ok := parseFlags(e, fs, args); !ok {
		return nil, code, false
	}
	return o, exitOK, true
}

// printAccountsJSON prints the accounts as a JSON list ([] for none).
func printAccountsJSON(e *env, accts []account) {
	if accts == nil {
		accts = []account{}
	}
	b, _ := json.MarshalIndent(accts, "", "  ")
	fmt.Fprintln(e.stdout, string(b))
}

// printAccounts prints one line per account, the active one marked "*".
func printAccounts(e *env, accts []account) {
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
}

// switchOptions are the argument of `oauthsafe switch`.
type switchOptions struct {
	// want is the profile, or the subject, to make active.
	want string
}

func runSwitch(ctx context.Context, e *env, args []string) int {
	o, code, ok := parseSwitchOptions(e, args)
	if !ok {
		return code
	}
	accts, err := listAccounts()
	if err != nil {
		return e.fail(err)
	}
	name, code, ok := pickAccount(e, accts, o.want)
	if !ok {
		return code
	}
	if err := writeActive(name); err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.stderr, "Switched to profile %q.\n", name)
	return exitOK
}

// parseSwitchOptions parses switch's one argument; ok is false with the
// exit code when the command ends there (--help, a usage error).
func parseSwitchOptions(e *env, args []string) (o *switchOptions, code int, ok bool) {
	fs := flag.NewFlagSet("switch", flag.ContinueOnError)
	fs.Usage = usageFunc(e, fs, switchHelp)
	if code, ok := parseFlagsN(e, fs, args, 1); !ok {
		return nil, code, false
	}
	if fs.NArg() != 1 {
		return nil, e.usageError("switch", "name the profile (or subject) to switch to"), false
	}
	return &switchOptions{want: fs.Arg(0)}, exitOK, true
}

// pickAccount finds the profile named want, or else the one profile
// logged in as subject want; ok is false with the exit code when there is
// none or more than one.
func pickAccount(e *env, accts []account, want string) (name string, code int, ok bool) {
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
		return "", exitError, false
	case 1:
		return match[0], exitOK, true
	default:
		e.errorf("subject %q is logged in under several profiles (%s); name the profile", clean(want), strings.Join(match, ", "))
		return "", exitError, false
	}
}

// writeActive makes name the active profile (the file "active" in the
// profile directory, written atomically, mode 0600).
func writeActive(name string) error {
	d, err := profileDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(d, 0o700); err != nil {
		return err
	}
	tmp := filepath.Join(d, activeFile+".tmp")
	if err := os.WriteFile(tmp, []byte(name+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(d, activeFile))
}

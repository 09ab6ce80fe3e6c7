package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/tokenstore"
)

const statusHelp = `
Usage: oauthsafe status [RESOURCE-URL | --profile NAME] [--json]

Shows on stdout what a login saved: issuer, client id, subject, requested
scopes (from the profile), granted scopes (from the stored record),
resources, where the refresh token is kept and whether it is there,
whether the agent runs and, only when the agent holds one, when its
access token expires. It never prints a token and makes no
request to the server. Exits 3 when there is no usable login, after
logout too: the profile's block is still printed (with "logged_in":
false in --json), so scripts can test the exit status alone.

--json prints one JSON object (the fields are stable; absent values are
omitted):

  profile              the profile name
  logged_in            true when a refresh token is stored (exit 0), false
                       after logout or when none is (exit 3)
  issuer, client_id    as given to login
  subject              the "sub" of the login's ID token (cleaned)
  scopes_requested     list of strings
  scopes_granted       list of strings: the grant in the stored record (at
                       login, updated by refreshes)
  resources            list of RFC 8707 resource indicators
  logged_in_at         RFC 3339, while a login is stored
  store                "keyring" or "file"
  store_file           path of the encrypted file (store "file")
  refresh_token        "present", "absent" or "unknown" (store unreachable)
  dpop                 true when the stored login is bound to a DPoP key kept with it
  resource_url         the URL a resource-first login (login URL) was given
  allow_loopback_http  true when plain http to loopback hosts is allowed (login --allow-loopback-http)
  agent                "running", "not running" or "off"
  access_token_expiry  RFC 3339, only when the agent holds an access token

Examples:
  oauthsafe status
  oauthsafe status --profile work --json
`

// statusJSON is the documented schema of `status --json`.
type statusJSON struct {
	Profile           string   `json:"profile"`
	LoggedIn          bool     `json:"logged_in"`
	Issuer            string   `json:"issuer"`
	ClientID          string   `json:"client_id"`
	Subject           string   `json:"subject,omitempty"`
	ScopesRequested   []string `json:"scopes_requested,omitempty"`
	ScopesGranted     []string `json:"scopes_granted,omitempty"`
	Resources         []string `json:"resources,omitempty"`
	LoggedInAt        string   `json:"logged_in_at,omitempty"`
	Store             string   `json:"store"`
	StoreFile         string   `json:"store_file,omitempty"`
	RefreshToken      string   `json:"refresh_token"`
	DPoP              bool     `json:"dpop"`
	ResourceURL       string   `json:"resource_url,omitempty"`
	AllowLoopbackHTTP bool     `json:"allow_loopback_http"`
	Agent             string   `json:"agent"`
	AccessTokenExpiry string   `json:"access_token_expiry,omitempty"`
}

// statusOptions are the flags and the argument of `oauthsafe status`.
type statusOptions struct {
	profile string
	asJSON  bool
	// resource is the URL of a resource-first profile ("" for none).
	resource string
}

func runStatus(ctx context.Context, e *env, args []string) int {
	o, code, ok := parseStatusOptions(e, args)
	if !ok {
		return code
	}
	e.relogin = o.resource
	p, err := loadProfile(o.profile)
	if err != nil {
		return e.fail(fmt.Errorf("status: %w", err))
	}
	e.relogin = p.Resource
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st := profileStatus(o.profile, p)
	storeErr := st.readRecord(ctx, e, p, !o.asJSON && e.stdin != nil)
	st.askAgent(ctx, e)
	if o.asJSON {
		b, _ := json.MarshalIndent(st, "", "  ")
		fmt.Fprintln(e.stdout, string(b))
	} else {
		printStatus(e, st)
	}
	switch {
	case st.RefreshToken == "absent":
		return e.fail(fmt.Errorf("status: %w", errNoLogin))
	case storeErr != nil:
		return e.fail(fmt.Errorf("status: reading the %s store: %w", st.Store, storeErr))
	}
	return exitOK
}

// parseStatusOptions parses status's flags and resource URL; ok is false
// with the exit code when the command ends there (--help, a usage error).
func parseStatusOptions(e *env, args []string) (o *statusOptions, code int, ok bool) {
	o = &statusOptions{}
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.StringVar(&o.profile, "profile", currentProfile(), "profile `NAME` saved by login")
	fs.BoolVar(&o.asJSON, "json", false, "print one JSON object (schema in --help)")
	fs.Usage = usageFunc(e, fs, statusHelp)
	if o.resource, code, ok = parseFlagsResource(e, fs, args); !ok {
		return nil, code, false
	}
	resourceProfileFor(fs, &o.profile, o.resource)
	return o, exitOK, true
}

// profileStatus is what the profile p says, before the store and the
// agent are asked.
func profileStatus(name string, p *profile) *statusJSON {
	st := &statusJSON{
		Profile: name, Issuer: p.Issuer, ClientID: p.ClientID, Subject: clean(p.Subject),
		ScopesRequested: p.Scopes, Resources: p.Resources,
		Store: p.storeKind(), StoreFile: p.StoreFile, RefreshToken: "unknown", Agent: "not running",
		ResourceURL: p.Resource, AllowLoopbackHTTP: p.AllowLoopbackHTTP,
	}
	if !p.LoggedInAt.IsZero() {
		st.LoggedInAt = p.LoggedInAt.UTC().Format(time.RFC3339)
	}
	if st.Store == storeFile && st.StoreFile == "" {
		st.StoreFile, _ = defaultStoreFile()
	}
	return st
}

// readRecord adds what the stored record says (never its refresh token):
// the granted scopes and whether a refresh token is there. It returns the
// error of a store that could not be read; prompt allows asking for a
// passphrase.
func (st *statusJSON) readRecord(ctx context.Context, e *env, p *profile, prompt bool) error {
	store, err := openStore(e, p, prompt)
	var rec *engine.Record
	if err == nil {
		rec, err = engine.LoadRecord(ctx, store, p.storeKey(st.Profile))
	}
	switch {
	case err == nil:
		st.RefreshToken, st.LoggedIn = "present", true
		st.ScopesGranted = slices.Clone(rec.Scopes)
		st.DPoP = !rec.DPoPKey.IsZero()
	case errors.Is(err, tokenstore.ErrNotFound), errors.Is(err, tokenstore.ErrLoginRequired), errors.Is(err, tokenstore.ErrCorrupt):
		st.RefreshToken = "absent" // an old (v1) record or a damaged one cannot be refreshed either
		st.LoggedInAt = ""         // no login is stored: none to date
	default:
		return err
	}
	return nil
}

// askAgent adds whether the agent runs and, when it holds one, its
// access token's expiry; the agent is asked without starting it.
func (st *statusJSON) askAgent(ctx context.Context, e *env) {
	if agentDisabled(e.getenv) {
		st.Agent = "off"
	} else if res, err := agentCall(ctx, e.getenv, agentRequest{Op: "status"}, 5*time.Second); err == nil {
		st.Agent = "running"
		for _, ap := range res.Profiles {
			if ap.Name == st.Profile && ap.Expiry.After(time.Now()) {
				st.AccessTokenExpiry = ap.Expiry.UTC().Truncate(time.Second).Format(time.RFC3339)
			}
		}
	}
}

func printStatus(e *env, st *statusJSON) {
	w := e.stdout
	fmt.Fprintf(w, "Profile:    %s\n", st.Profile)
	fmt.Fprintf(w, "Issuer:     %s\n", st.Issuer)
	fmt.Fprintf(w, "Client ID:  %s\n", st.ClientID)
	if st.Subject != "" {
		fmt.Fprintf(w, "Subject:    %s\n", st.Subject) // cleaned, as in --json
	} else {
		fmt.Fprintf(w, "Subject:    (unknown: no ID token)\n")
	}
	fmt.Fprintf(w, "Requested:  %s\n", strings.Join(st.ScopesRequested, " "))
	switch {
	case len(st.ScopesGranted) > 0:
		fmt.Fprintf(w, "Granted:    %s\n", strings.Join(st.ScopesGranted, " "))
	case st.RefreshToken == "present":
		fmt.Fprintf(w, "Granted:    (none)\n")
	default:
		fmt.Fprintf(w, "Granted:    (none: not logged in)\n")
	}
	if len(st.Resources) > 0 {
		fmt.Fprintf(w, "Resources:  %s\n", strings.Join(st.Resources, " "))
	}
	printResourceStatus(w, st)
	if st.LoggedInAt != "" {
		fmt.Fprintf(w, "Logged in:  %s\n", st.LoggedInAt)
	}
	store := "the OS keyring"
	if st.Store == storeFile {
		store = "the encrypted file " + st.StoreFile
	}
	switch st.RefreshToken {
	case "present":
		fmt.Fprintf(w, "Refresh:    stored in %s\n", store)
	case "absent":
		fmt.Fprintf(w, "Refresh:    none in %s (not logged in)\n", store)
	default:
		fmt.Fprintf(w, "Refresh:    unknown (%s could not be read)\n", store)
	}
	if st.DPoP {
		fmt.Fprintf(w, "DPoP:       the tokens are bound to a key stored with the refresh token\n")
	}
	fmt.Fprintf(w, "Agent:      %s\n", st.Agent)
	if st.AccessTokenExpiry != "" {
		fmt.Fprintf(w, "Expiry:     %s (the agent's access token, kept in memory only)\n", st.AccessTokenExpiry)
	}
}

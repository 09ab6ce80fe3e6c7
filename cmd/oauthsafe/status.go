package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

func init() {
	register(command{name: "status", summary: "show the issuer, subject, scopes and expiry of a login (never a token)", run: runStatus})
}

const statusHelp = `
Usage: oauthsafe status [--profile NAME]

Shows what a login saved: issuer, client id, subject, scopes, when the login
happened, when the last access token handed out expires, and whether the OS
keyring holds a refresh token. It never prints a token and makes no request
to the server. Exits 3 when there is no usable login.

Examples:
  oauthsafe status
  oauthsafe status --profile work
`

func runStatus(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	profileFlag := fs.String("profile", defaultProfile, "profile `NAME` saved by login")
	fs.Usage = usageFunc(e, fs, statusHelp)
	if code, ok := parseFlags(e, fs, args); !ok {
		return code
	}
	p, err := loadProfile(*profileFlag)
	if err != nil {
		return e.fail(fmt.Errorf("status: %w", err))
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	w := e.stderr
	fmt.Fprintf(w, "Profile:    %s\n", *profileFlag)
	fmt.Fprintf(w, "Issuer:     %s\n", p.Issuer)
	fmt.Fprintf(w, "Client ID:  %s\n", p.ClientID)
	if p.Subject != "" {
		fmt.Fprintf(w, "Subject:    %s\n", safetext.Quote(p.Subject, 200))
	} else {
		fmt.Fprintf(w, "Subject:    (unknown: no ID token)\n")
	}
	fmt.Fprintf(w, "Scopes:     %s\n", strings.Join(p.Scopes, " "))
	if p.CAFile != "" {
		fmt.Fprintf(w, "CA file:    %s\n", p.CAFile)
	}
	if !p.LoggedInAt.IsZero() {
		fmt.Fprintf(w, "Logged in:  %s\n", p.LoggedInAt.Local().Format(time.RFC3339))
	}
	if !p.AccessTokenExpiry.IsZero() {
		state := "expired"
		if d := time.Until(p.AccessTokenExpiry); d > 0 {
			state = "valid for " + d.Round(time.Second).String()
		}
		fmt.Fprintf(w, "Expiry:     %s (last access token, %s; kept in memory only)\n", p.AccessTokenExpiry.Local().Format(time.RFC3339), state)
	}
	rec, err := tokenstore.LoadRecord(ctx, newStore(), p.storeKey(*profileFlag))
	switch {
	case err == nil:
		fmt.Fprintf(w, "Granted:    %s\n", strings.Join(rec.Scopes, " "))
		fmt.Fprintf(w, "Refresh:    stored in the OS keyring\n")
		return exitOK
	case errors.Is(err, tokenstore.ErrNotFound), errors.Is(err, tokenstore.ErrCorrupt), errors.Is(err, tokenstore.ErrOldRecord):
		fmt.Fprintf(w, "Refresh:    none\n")
		return e.fail(fmt.Errorf("status: %w", errNoLogin))
	default:
		return e.fail(fmt.Errorf("status: reading the keyring: %w", err))
	}
}

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/tokenstore/keyring"
)

// This file holds how the CLI talks to people: usage errors (one line and a
// hint), the exit-code mapping, and messages that say what to do.

// errInterrupted is reported when the user pressed Ctrl-C (or the process
// got SIGTERM); the exit status is 130.
var errInterrupted = errors.New("interrupted")

// clean makes server-controlled or user-supplied text safe for the
// terminal with the one cleaner of server text (S22).
func clean(s string) string { return safetext.Clean(s, 300) }

// fail reports err on stderr and maps it to an exit code: 3 when a new
// login is needed, 130 when interrupted, 1 otherwise. It adds what to do
// for the errors people meet most (an unknown CA, a timeout, a server
// error's description). Errors of this module never contain a token.
func (e *env) fail(err error) int {
	// tokenstore.ErrLoginRequired also matches tokenstore.ErrLoginRequired.
	if errors.Is(err, errNoLogin) || errors.Is(err, tokenstore.ErrLoginRequired) {
		if e.relogin != "" {
			e.errorf("%s; run `oauthsafe login %s`", describe(err), e.relogin)
		} else {
			e.errorf("%s; run `oauthsafe login`", describe(err))
		}
		return exitLoginRequired
	}
	if errors.Is(err, errInterrupted) || errors.Is(err, context.Canceled) {
		e.errorf("interrupted")
		return exitInterrupted
	}
	if hint := hintFor(err); hint != "" {
		e.errorf("%s; %s", describe(err), strings.Join(strings.Fields(hint), " "))
	} else {
		e.errorf("%s", describe(err))
	}
	return exitError
}

// describe says what happened, once: an authorization server's answer as
// its code and cleaned description (the library's own wording and hint
// left out, since hintFor says what to do), anything else as its message.
// The package and command layers of wrapped errors are removed by errorf.
func describe(err error) string {
	var ae *oauthclient.AuthError
	if errors.As(err, &ae) && ae.Code != "" {
		where := "the server"
		if ae.Endpoint != "" && ae.Endpoint != "authorization" {
			where = "the " + ae.Endpoint + " endpoint"
		}
		if ae.Description != "" {
			return fmt.Sprintf("%s answered %s: %s", where, clean(ae.Code), safetext.Quote(ae.Description, 300))
		}
		return fmt.Sprintf("%s answered %s", where, clean(ae.Code))
	}
	var agentErr *agentError
	switch {
	case errors.As(err, &agentErr):
		return agentErr.msg // what the agent met, as it would be said without it
	case keyringReason(err) == "no-bus":
		return "the OS keyring cannot be reached: no D-Bus session bus"
	case keyringReason(err) == "no-secret-service":
		return "the OS keyring cannot be reached: no Secret Service on the D-Bus session bus"
	case keyringReason(err) == "locked":
		return "the OS keyring is locked and nothing here can ask to unlock it"
	}
	return err.Error()
}

// layers are the names that wrapped errors put in front of their message
// (packages, commands, the agent): one of each says nothing to a person.
var layers = map[string]bool{
	"oauthsafe": true, "oauthclient": true, "tokenstore": true, "tokenstore/keyring": true,
	"tokenstore/sqlstore": true, "sqlstore": true, "validate": true, "callback": true, "keyring": true,
	"agent": true, "login": true, "token": true, "status": true, "logout": true, "accounts": true,
	"switch": true, "git-credential": true, "demo": true,
}

// oneLayer drops the layer names at the start of msg's ": "-separated
// parts: "token: agent: tokenstore: login required" says "login required".
func oneLayer(msg string) string {
	parts := strings.Split(msg, ": ")
	out := parts[:0]
	for i, p := range parts {
		if layers[p] && i < len(parts)-1 {
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, ": ")
}

// hintFor says what to do about err, or "" when there is nothing useful
// to add. Server-controlled text in it is cleaned.
func hintFor(err error) string {
	var ua x509.UnknownAuthorityError
	var uap *x509.UnknownAuthorityError
	var cve *tls.CertificateVerificationError
	var hn x509.HostnameError
	var ae *oauthclient.AuthError
	var ne net.Error
	var agentErr *agentError
	var sf *secretFileError
	var ce *strictnet.ConnError
	switch {
	case errors.As(err, &agentErr):
		return agentErr.hint
	case errors.As(err, &sf):
		return "give --client-secret-file a file of yours with mode 0600 (or 0400) holding the secret, or set " + envClientSecret
	case errors.As(err, &ua), errors.As(err, &uap):
		return "The server's TLS certificate is signed by an authority this machine does not trust. If your organisation runs its own CA, pass its certificate with --ca-file PEM to `oauthsafe login` (it is kept in the profile)."
	case errors.As(err, &hn):
		return "The server's TLS certificate does not name this host: check the --issuer URL."
	case errors.Is(err, oauthclient.ErrIssuerMismatch):
		// The library's hint: with a trailing slash, the exact value.
		return strictnet.Hint(err) + "; log in again with that --issuer"
	case errors.As(err, &ce) && errors.Is(err, syscall.ECONNREFUSED):
		return strictnet.Hint(err) + " (the --issuer URL, or the API's)"
	case errors.As(err, &cve):
		return "The server's TLS certificate could not be verified; check the --issuer URL, or pass your CA with --ca-file PEM."
	case errors.As(err, &ae) && ae.Problem == "":
		// The server's own text is in describe's message, once.
		switch ae.Code {
		case "invalid_client", "unauthorized_client":
			return "check --client-id (and the client secret, if the client has one) against the client registered at the server"
		case "invalid_scope":
			return "check --scope against the scopes the server offers this client"
		case "access_denied":
			return "the sign-in was refused or cancelled in the browser; run `oauthsafe login` again"
		case "invalid_target":
			return "check --resource against the resources the server offers this client"
		}
		return ""
	case errors.Is(err, callback.ErrTimeout):
		return "No sign-in arrived in time: run `oauthsafe login` again and finish in the browser, or give it longer with --timeout."
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "The server did not answer in time: check the network (and HTTPS_PROXY), that the issuer URL is right, then try again."
	case errors.Is(err, tokenstore.ErrWrongPassphrase), errors.Is(err, tokenstore.ErrInsecurePermissions), errors.Is(err, errNeedPassphrase):
		return storeAdvice(storeFile, err)
	case keyringReason(err) != "":
		return storeAdvice(storeKeyring, err)
	case errors.Is(err, tokenstore.ErrUnavailable):
		return "The store could not be reached: for the OS keyring, a Secret Service (gnome-keyring, KWallet) must run in this session; or log in again with --store file."
	}
	return ""
}

// cleanLines cleans each line of s (S22), keeping the line breaks.
func cleanLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = safetext.Clean(l, 1000)
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// usageError reports a usage mistake in one line, with a hint where the
// full help is, and returns exit status 2.
func (e *env) usageError(cmd, format string, args ...any) int {
	e.errorf("%s; run 'oauthsafe %s --help' for usage", fmt.Sprintf(format, args...), cmd)
	return exitUsage
}

// parseFlags parses a command's flags; it returns ok=false with the exit
// code for --help (0, full help on stderr) or a usage error (2, one line
// and a hint). No positional argument is taken when maxArgs is 0.
func parseFlags(e *env, fs *flag.FlagSet, args []string) (code int, ok bool) {
	return parseFlagsN(e, fs, args, 0)
}

func parseFlagsN(e *env, fs *flag.FlagSet, args []string, maxArgs int) (code int, ok bool) {
	usage := fs.Usage
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(e.stderr)
	fs.Usage = usage
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return exitOK, false
		}
		return e.usageError(fs.Name(), "%s", clean(err.Error())), false
	}
	if fs.NArg() > maxArgs {
		return e.usageError(fs.Name(), "unexpected argument %q", clean(fs.Arg(maxArgs))), false
	}
	return 0, true
}

// usageFunc prints a command's synopsis, description and examples, then its flags.
func usageFunc(e *env, fs *flag.FlagSet, text string) func() {
	return func() {
		fmt.Fprintln(e.stderr, strings.TrimSpace(text))
		fmt.Fprintln(e.stderr, "\nFlags:")
		fs.PrintDefaults()
	}
}

// keyringReason is the Reason of the *keyring.UnavailableError in err
// ("no-bus", "no-secret-service" or "locked"), or "" when there is none.
func keyringReason(err error) string {
	var ue *keyring.UnavailableError
	if errors.As(err, &ue) {
		return ue.Reason
	}
	return ""
}

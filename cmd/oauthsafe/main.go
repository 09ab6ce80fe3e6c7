// Command oauthsafe logs in with OAuth 2.0 / OpenID Connect, keeps the
// refresh token in the OS keyring (or an encrypted file, by choice) and
// prints fresh access tokens for scripts, kubectl and git.
//
// Usage:
//
//	oauthsafe login  --issuer URL --client-id ID [flags]
//	oauthsafe login  RESOURCE-URL [flags]
//	oauthsafe token  [RESOURCE-URL | --profile NAME] [--output raw|json|exec-credential]
//	oauthsafe token  --client-credentials | --assertion-file F | --exchange [flags]
//	oauthsafe status [RESOURCE-URL | --profile NAME] [--json]
//	oauthsafe logout [RESOURCE-URL | --profile NAME]
//	oauthsafe accounts [--json]
//	oauthsafe switch PROFILE|SUBJECT
//	oauthsafe git-credential [--profile NAME] get|store|erase
//	oauthsafe agent  [start|stop|status|run]
//	oauthsafe demo
//
// Messages go to stderr; results (tokens, status) go to stdout. Exit codes:
// 0 ok, 1 error, 2 usage, 3 a new login is needed, 130 interrupted.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/oauthsafe/oauthsafe/internal/filelock"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// Exit codes.
const (
	exitOK            = 0
	exitError         = 1
	exitUsage         = 2
	exitLoginRequired = 3
	exitInterrupted   = 130
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version from the build info is shown.
var version = ""

func versionString() string {
	v := version
	if v == "" {
		v = "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
	}
	return "oauthsafe " + v
}

// commands is the dispatch table: each command's name and the function
// that parses its flags into its options and runs it. Every one of them
// has its line in commandHelp (TestHelpListsCommandsInOrder).
var commands = map[string]func(ctx context.Context, e *env, args []string) int{
	"login":          runLogin,
	"token":          runToken,
	"status":         runStatus,
	"logout":         runLogout,
	"accounts":       runAccounts,
	"switch":         runSwitch,
	"git-credential": runGitCredential,
	"agent":          runAgent,
	"demo":           runDemo,
}

// helpLine is one line of the list --help prints: a command and its
// summary, or, without a name, a text line (a group's title, a note).
type helpLine struct{ name, summary string }

// commandHelp is the list of commands --help prints, in the order a user
// needs them: logging in and using tokens first, then the modes of login
// and token for resources and machine identities, the accounts, what
// other tools call, and the rest. help and version are answered by run
// itself.
var commandHelp = []helpLine{
	{"", "Log in and use tokens:"},
	{"login", "log in through the browser (or the device grant) and keep the refresh token in the keyring"},
	{"token", "print a valid access token on stdout (refreshing with the keyring's refresh token)"},
	{"status", "show the issuer, subject, granted scopes, store and agent of a login (never a token)"},
	{"logout", "revoke the refresh token at the server and delete it from the keyring"},
	{"", "\nResources and machine identities (modes of login and token):"},
	{"", "  oauthsafe login URL       a resource (an MCP server, an API) needs only its URL;"},
	{"", "                            token, status and logout then take the URL too"},
	{"", "  oauthsafe token --client-credentials | --assertion-file FILE | --exchange ..."},
	{"", "                            a machine identity's token: no user, nothing stored"},
	{"", "\nAccounts:"},
	{"accounts", "list the logged-in accounts (profiles), the active one marked"},
	{"switch", "make another account (profile) the active one"},
	{"", "\nFor other tools:"},
	{"git-credential", "a git credential helper answering with the access token (get|store|erase)"},
	{"agent", "the per-user agent that keeps access tokens in memory (start|stop|status|run)"},
	{"", "\nMore:"},
	{"demo", "run every flow end to end against an embedded authorization server"},
	{"version", "print the version of oauthsafe"},
	{"help", "print this list"},
}

// env carries the process's streams, so tests can run commands in process.
type env struct {
	stdout io.Writer
	stderr io.Writer
	stdin  io.Reader
	getenv func(string) string
	// cmd is the running command's name, for the messages.
	cmd string
	// relogin is the resource URL of a resource-first profile, when the
	// command works on one: a new login is then `oauthsafe login URL`.
	relogin string
}

// errorf prints one message line in the one style of the CLI:
// "oauthsafe <command>: <what happened>; <what to do>", with the layers of
// wrapped errors removed (oneLayer). The whole message goes through the
// one cleaner of server text (S22), since errors quote servers.
func (e *env) errorf(format string, args ...any) {
	prefix := "oauthsafe"
	if e.cmd != "" {
		prefix += " " + e.cmd
	}
	msg := oneLayer(fmt.Sprintf(format, args...))
	fmt.Fprintf(e.stderr, "%s: %s\n", prefix, safetext.Clean(msg, 2000))
}

// usage prints the list of commands, in commandHelp's order.
func usage(w io.Writer) {
	fmt.Fprint(w, "Usage: oauthsafe <command> [flags]\n\n")
	for _, c := range commandHelp {
		if c.name == "" {
			fmt.Fprintln(w, c.summary)
			continue
		}
		fmt.Fprintf(w, "  %-15s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'oauthsafe <command> --help' for a command's flags and examples.")
	fmt.Fprintln(w, "Exit codes: 0 ok, 1 error, 2 usage, 3 a new login is needed, 130 interrupted.")
}

func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		usage(e.stderr)
		return exitOK
	case "--version", "-version", "version":
		fmt.Fprintln(e.stdout, versionString())
		return exitOK
	}
	runCmd, ok := commands[args[0]]
	if !ok {
		// A usage error is one line with the hint, as in every command.
		e.errorf("unknown command %q; run 'oauthsafe --help' for the list of commands", clean(args[0]))
		return exitUsage
	}
	e.cmd = args[0]
	code := runCmd(ctx, e, args[1:])
	if p := filelock.Squatted(); p != "" {
		e.errorf("warning: %s belongs to another user; a private directory under your home was used instead (ask an administrator to look at it)", p)
	}
	return code
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &env{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, getenv: os.Getenv}, os.Args[1:])
	if ctx.Err() != nil {
		// Interrupted (Ctrl-C or SIGTERM): whatever the command made of it.
		code = exitInterrupted
	}
	stop()
	os.Exit(code)
}

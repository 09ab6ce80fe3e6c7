// Command oauthsafe logs in with OAuth 2.0 / OpenID Connect, keeps the
// refresh token in the OS keyring (or an encrypted file, by choice) and
// prints fresh access tokens for scripts, kubectl and git.
//
// Usage:
//
//	oauthsafe login  --issuer URL --client-id ID [flags]
//	oauthsafe token  [--profile NAME] [--output raw|json|exec-credential]
//	oauthsafe status [--profile NAME] [--json]
//	oauthsafe logout [--profile NAME]
//	oauthsafe agent  [start|stop|status|run]
//	oauthsafe git-credential [--profile NAME] get|store|erase
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

// command is one subcommand of the CLI.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *env, args []string) int
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

var commands []command

func register(c command) { commands = append(commands, c) }

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: oauthsafe <command> [flags]\n\nCommands:")
	for _, c := range commands {
		if c.summary != "" {
			fmt.Fprintf(w, "  %-15s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprintln(w, "\nRun 'oauthsafe <command> --help' for a command's flags and examples.")
	fmt.Fprintln(w, "Exit codes: 0 ok, 1 error, 2 usage, 3 a new login is needed, 130 interrupted.")
}

func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		e.errorf("no command given; run 'oauthsafe --help' for the list of commands")
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
	for _, c := range commands {
		if c.name == args[0] {
			e.cmd = c.name
			code := c.run(ctx, e, args[1:])
			if p := filelock.Squatted(); p != "" {
				e.errorf("warning: %s belongs to another user; a private directory under your home was used instead (ask an administrator to look at it)", p)
			}
			return code
		}
	}
	e.errorf("unknown command %q; run 'oauthsafe --help' for the list of commands", clean(args[0]))
	return exitUsage
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

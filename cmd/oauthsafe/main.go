// Command oauthsafe logs in with OAuth 2.0 / OpenID Connect, keeps the
// refresh token in the OS keyring and prints fresh access tokens for scripts.
//
// Usage:
//
//	oauthsafe login  --issuer URL --client-id ID [flags]
//	oauthsafe token  [--profile NAME]
//	oauthsafe status [--profile NAME]
//	oauthsafe logout [--profile NAME]
//	oauthsafe demo
//
// Messages go to stderr; only tokens go to stdout. Exit codes: 0 ok, 1 error,
// 2 usage, 3 a new login is needed.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"

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
	getenv func(string) string
}

// errorf prints one error line; the whole message goes through the one
// cleaner of server text (S22), since errors quote servers.
func (e *env) errorf(format string, args ...any) {
	fmt.Fprintf(e.stderr, "oauthsafe: %s\n", safetext.Clean(fmt.Sprintf(format, args...), 2000))
}

var commands []command

func register(c command) { commands = append(commands, c) }

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: oauthsafe <command> [flags]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'oauthsafe <command> --help' for a command's flags and examples.")
}

func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(e.stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	e.errorf("unknown command %q", args[0])
	usage(e.stderr)
	return exitUsage
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, os.Args[1:])
	stop()
	os.Exit(code)
}

// Command oauthsafe-demo runs every flow of the oauthsafe SDK end to end
// against an authorization server embedded in the process (zitadel's OP
// library), and tries the classic attacks. It prints each check and each
// blocked attack, and never a token.
//
// It is a program of its own so that the oauthsafe CLI binary carries no
// authorization server: `oauthsafe demo` runs this program.
//
// Usage:
//
//	go run ./cmd/oauthsafe demo          # from a checkout of the repository
//	go run ./cmd/oauthsafe/oauthsafe-demo
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
)

const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// env is where the demo writes; tests give it buffers.
type env struct {
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

func (e *env) errorf(format string, args ...any) {
	fmt.Fprintf(e.stderr, "oauthsafe: "+format+"\n", args...)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := runDemo(ctx, &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, os.Args[1:])
	stop()
	os.Exit(code)
}

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
)

// demoPackage is the separate demo program. The CLI binary does not link an
// authorization server; `oauthsafe demo` runs this program instead.
const demoPackage = "github.com/oauthsafe/oauthsafe/cmd/oauthsafe/oauthsafe-demo"

const demoHelp = `
Usage: oauthsafe demo [flags of the demo]

Runs every flow end to end against an authorization server embedded in the
demo program: discovery and TLS refusals, the code flow (web and loopback),
refresh with rotation, client credentials, DPoP, PAR, an API call through
the safe transport, and the attacks each check stops. It prints what it
checks and never a token.

The demo is a separate program, oauthsafe-demo, so that this binary links
no authorization server. It is found next to this binary or on PATH;
` + "`go install github.com/oauthsafe/oauthsafe/cmd/oauthsafe/...@latest`" + ` installs
both. From a checkout, ` + "`go run ./cmd/oauthsafe demo`" + ` builds it too.
`

// demoOptions are the arguments of `oauthsafe demo`: they go to the demo
// program as they are, except --help, answered here.
type demoOptions struct {
	args []string
}

// runDemo starts the demo program: an oauthsafe-demo binary next to this
// one or on PATH, else, from a checkout or a released version, ` + "`go run`" + `
// of its package. Without any of them it says how to install it.
func runDemo(ctx context.Context, e *env, args []string) int {
	o, ok := parseDemoOptions(e, args)
	if !ok {
		return exitOK
	}
	name, argv := demoCommand()
	if name == "" {
		e.errorf("the demo program oauthsafe-demo is not installed next to this binary or on PATH; install both with `go install %s/...@latest` (or run `go run ./cmd/oauthsafe demo` in a checkout)", strings.TrimSuffix(demoPackage, "/oauthsafe-demo"))
		return exitError
	}
	return runDemoProgram(ctx, e, name, append(argv, o.args...))
}

// parseDemoOptions keeps the demo program's arguments; ok is false after
// printing the help for --help.
func parseDemoOptions(e *env, args []string) (o *demoOptions, ok bool) {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			fmt.Fprint(e.stderr, strings.TrimPrefix(demoHelp, "\n"))
			return nil, false
		}
	}
	return &demoOptions{args: args}, true
}

// runDemoProgram runs the demo program with its streams on the CLI's (no
// stdin) and exits as it does.
func runDemoProgram(ctx context.Context, e *env, name string, argv []string) int {
	cmd := exec.CommandContext(ctx, name, argv...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, e.stdout, e.stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return exitOK
	case ctx.Err() != nil:
		return exitInterrupted
	case errors.As(err, &exit) && exit.ExitCode() > 0:
		return exit.ExitCode()
	default:
		e.errorf("running the demo program: %v", err)
		return exitError
	}
}

// demoCommand finds how to run the demo program: "" when it cannot.
func demoCommand() (string, []string) {
	if self, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(self), "oauthsafe-demo"); isExecutable(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath("oauthsafe-demo"); err == nil {
		return p, nil
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", nil
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return goTool, []string{"run", demoPackage + "@" + bi.Main.Version} // a released version
	}
	if inCheckout() {
		return goTool, []string{"run", demoPackage}
	}
	return "", nil // a development build outside its checkout: go run cannot find the package
}

// inCheckout reports whether the working directory is inside a checkout of
// this repository (a go.work or go.mod of the oauthsafe module above it).
func inCheckout() bool {
	dir, err := os.Getwd()
	if err != nil {
		return false
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/oauthsafe/oauthsafe\n") {
			return true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return false
		}
		dir = parent
	}
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

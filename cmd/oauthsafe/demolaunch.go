package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
)

func init() {
	register(command{name: "demo", summary: "run every flow end to end against an embedded authorization server", run: runDemo})
}

// demoPackage is the separate demo program. The CLI binary does not link an
// authorization server; `oauthsafe demo` runs this program instead.
const demoPackage = "github.com/oauthsafe/oauthsafe/cmd/oauthsafe/oauthsafe-demo"

// runDemo starts the demo program: an oauthsafe-demo binary next to this
// one or on PATH, else `go run` of its package (from the checkout when this
// binary was built from one, else at this binary's module version).
func runDemo(ctx context.Context, e *env, args []string) int {
	name, argv := demoCommand()
	if name == "" {
		e.errorf("demo: the demo is a separate program; install it with\n  go install %s@latest\nor run it from a checkout: go run ./cmd/oauthsafe demo", demoPackage)
		return exitError
	}
	cmd := exec.CommandContext(ctx, name, append(argv, args...)...)
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
		e.errorf("demo: %v", err)
		return exitError
	}
}

// demoCommand finds how to run the demo program.
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
	pkg := demoPackage
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		pkg += "@" + bi.Main.Version
	}
	return goTool, []string{"run", pkg}
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

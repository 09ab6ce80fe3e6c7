package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestDemoRunsTheSeparateProgram: `oauthsafe demo` runs an oauthsafe-demo
// program found on PATH, passes the arguments and the exit code through,
// and the CLI itself links no authorization server.
func TestDemoRunsTheSeparateProgram(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("uses a shell script as the stand-in program")
	}
	dir := t.TempDir()
	script := "#!/bin/sh\necho \"demo ran with: $*\"\nexit 7\n"
	if err := os.WriteFile(filepath.Join(dir, "oauthsafe-demo"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out, errb bytes.Buffer
	code := run(context.Background(), &env{stdout: &out, stderr: &errb, getenv: os.Getenv}, []string{"demo", "--x"})
	if code != 7 || !strings.Contains(out.String(), "demo ran with: --x") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

// TestCLILinksNoAuthorizationServer checks the production binary's
// dependencies: the OP library and the test server stay in the demo program.
func TestCLILinksNoAuthorizationServer(t *testing.T) {
	bi := buildDeps(t)
	for _, bad := range []string{"github.com/zitadel/", "github.com/oauthsafe/oauthsafe/oauthtest", "github.com/go-chi/"} {
		if strings.Contains(bi, bad) {
			t.Errorf("the CLI links %s", bad)
		}
	}
}

func buildDeps(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestDemoFromInstalledBinary: both programs built as `go install
// .../cmd/oauthsafe/...` installs them (side by side in one bin
// directory), run from a directory outside any checkout with no Go
// toolchain on PATH: `oauthsafe demo` runs the whole demo (exit 0, its
// sections printed, no token) and `oauthsafe demo --help` answers without
// it. The CLI alone, without the demo program and outside a checkout, says
// in one line how to install it, never a raw go error.
func TestDemoFromInstalledBinary(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("unix paths")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", ".", "./oauthsafe-demo")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	outside := t.TempDir()
	runIn := func(exe string, args ...string) (int, string, string) {
		cmd := exec.Command(exe, args...)
		cmd.Dir = outside
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + outside, "XDG_CONFIG_HOME=" + filepath.Join(outside, ".config")}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, out.String(), errb.String()
	}
	code, out, errb := runIn(filepath.Join(bin, "oauthsafe"), "demo")
	if code != 0 || !strings.Contains(out, "DPoP") || errb != "" {
		t.Fatalf("installed demo: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errb)
	}
	code, _, errb = runIn(filepath.Join(bin, "oauthsafe"), "demo", "--help")
	if code != 0 || !strings.Contains(errb, "oauthsafe-demo") || strings.Contains(errb, "go.mod") {
		t.Fatalf("demo --help: exit %d\n%s", code, errb)
	}
	// The CLI alone.
	alone := t.TempDir()
	copyExec(t, filepath.Join(bin, "oauthsafe"), filepath.Join(alone, "oauthsafe"))
	code, _, errb = runIn(filepath.Join(alone, "oauthsafe"), "demo")
	if code != exitError || strings.Count(errb, "\n") != 1 || !strings.Contains(errb, "go install github.com/oauthsafe/oauthsafe/cmd/oauthsafe/...") || strings.Contains(errb, "go.mod") {
		t.Fatalf("demo without the demo program: exit %d\n%s", code, errb)
	}
}

func copyExec(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

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
	for _, bad := range []string{"github.com/zitadel/", "github.com/oauthsafe/oauthsafe/internal/authserver", "github.com/go-chi/"} {
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

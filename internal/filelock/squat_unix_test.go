//go:build linux

package filelock

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const envSquat = "OAUTHSAFE_FILELOCK_SQUAT"

// TestUserDirSquatChild is run by TestUserDirSurvivesSquatter as another
// uid: "squat" creates the victim's temp-dir path first, "use" asks for
// the private dir and takes a lock in it.
func TestUserDirSquatChild(t *testing.T) {
	switch os.Getenv(envSquat) {
	case "":
		t.Skip("run by TestUserDirSurvivesSquatter")
	case "squat":
		if err := os.Mkdir(os.Getenv("SQUAT_PATH"), 0o700); err != nil {
			t.Fatal(err)
		}
	case "use":
		dir, err := UserDir(nil)
		if err != nil {
			fmt.Printf("ERR %v\n", err)
			return
		}
		unlock, err := Lock(context.Background(), filepath.Join(dir, "locks"), "k")
		if err != nil {
			fmt.Printf("ERR lock: %v\n", err)
			return
		}
		unlock()
		fmt.Printf("DIR %s\nSQUATTED %s\n", dir, Squatted())
	}
}

// TestUserDirSurvivesSquatter: with XDG_RUNTIME_DIR unset, another local
// user (uid 60002) creates $TMPDIR/oauthsafe-60001 first in a sticky,
// world-writable temp dir, where the victim (uid 60001) cannot remove it.
// The victim's UserDir does not use it and does not fail: it falls back to
// a 0700 directory of its own under its home's cache dir, takes a lock
// there, and reports the squatted path. Run as root, dropping to both uids
// (CI runs as root; elsewhere the test skips).
func TestUserDirSurvivesSquatter(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run as two other uids")
	}
	const victim, squatter = 60001, 60002
	base := t.TempDir()
	for d := base; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755) // let the other uids reach the test's files
	}
	tmp := filepath.Join(base, "tmp")
	home := filepath.Join(base, "home")
	bin := filepath.Join(base, "bin")
	for _, d := range []string{tmp, home, bin} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(tmp, 0o1777) // like /tmp
	os.Chown(home, victim, victim)
	os.Chmod(home, 0o700)
	exe := filepath.Join(bin, "filelock.test")
	copyFile(t, os.Args[0], exe)

	run := func(uid int, mode string, env ...string) string {
		t.Helper()
		cmd := exec.Command(exe, "-test.run=^TestUserDirSquatChild$", "-test.v", "-test.count=1")
		cmd.Env = append([]string{envSquat + "=" + mode, "TMPDIR=" + tmp, "HOME=" + home, "PATH=/usr/bin:/bin"}, env...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
		cmd.Dir = bin
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child as uid %d (%s): %v\n%s", uid, mode, err, out)
		}
		return string(out)
	}
	squat := filepath.Join(tmp, fmt.Sprintf("oauthsafe-%d", victim))
	run(squatter, "squat", "SQUAT_PATH="+squat)
	if fi, err := os.Stat(squat); err != nil || fi.Sys().(*syscall.Stat_t).Uid != squatter {
		t.Fatalf("the squatter's directory: %v", err)
	}
	out := run(victim, "use")
	var dir, reported string
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "ERR "); ok {
			t.Fatalf("the victim's UserDir with a squatted path: %s", v)
		}
		if v, ok := strings.CutPrefix(l, "DIR "); ok {
			dir = v
		}
		if v, ok := strings.CutPrefix(l, "SQUATTED "); ok {
			reported = v
		}
	}
	if want := filepath.Join(home, ".cache", "oauthsafe", "run"); dir != want {
		t.Fatalf("the victim's private dir is %q, want %q under its home", dir, want)
	}
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 || fi.Sys().(*syscall.Stat_t).Uid != victim {
		t.Fatalf("the fallback dir: %v, %v", fi.Mode(), err)
	}
	if reported != squat {
		t.Fatalf("reported squatted path %q, want %q", reported, squat)
	}
	// The squatter's directory was never used by the victim.
	if entries, _ := os.ReadDir(squat); len(entries) != 0 {
		t.Fatalf("the victim wrote into the squatted directory: %v", entries)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

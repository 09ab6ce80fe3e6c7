//go:build unix

package filelock

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestRuntimeDirIgnoresEnvironment: the lock directory is the same
// whatever XDG_RUNTIME_DIR, TMPDIR, HOME and XDG_CACHE_HOME say (a
// terminal, cron, systemd and the agent take the same locks):
// /tmp/oauthsafe-<uid>/locks.
func TestRuntimeDirIgnoresEnvironment(t *testing.T) {
	want := filepath.Join("/tmp", "oauthsafe-"+strconv.Itoa(os.Getuid()), "locks")
	for _, env := range [][4]string{
		{"", "", "", ""},
		{t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()},
		{"", t.TempDir(), "/nonexistent", ""},
		{t.TempDir(), "", "", t.TempDir()},
	} {
		t.Setenv("XDG_RUNTIME_DIR", env[0])
		t.Setenv("TMPDIR", env[1])
		t.Setenv("HOME", env[2])
		t.Setenv("XDG_CACHE_HOME", env[3])
		got, err := RuntimeDir()
		if err != nil {
			t.Fatalf("env %q: %v", env, err)
		}
		if got != want {
			t.Fatalf("env %q: RuntimeDir = %s, want %s whatever the environment", env, got, want)
		}
	}
}

// TestRuntimeDirSquatted: when the lock root's oauthsafe-<uid> is taken (a
// file here; another user's directory where root can make one, see
// TestUserDirSurvivesSquatter), or the lock root is open to others
// without the sticky bit, the lock directory is under the home directory
// of the user database (not HOME), and the squatted path is reported.
func TestRuntimeDirSquatted(t *testing.T) {
	defer func(root string, home func() (string, error)) {
		lockRoot, userHome = root, home
		squattedMu.Lock()
		squattedPath = ""
		squattedMu.Unlock()
	}(lockRoot, userHome)
	root, home := t.TempDir(), t.TempDir()
	lockRoot = root
	userHome = func() (string, error) { return home, nil }
	t.Setenv("HOME", t.TempDir())
	squat := filepath.Join(root, "oauthsafe-"+strconv.Itoa(os.Getuid()))
	if err := os.WriteFile(squat, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(home, ".cache", "oauthsafe", "run", "locks")
	got, err := RuntimeDir()
	if err != nil || got != want {
		t.Fatalf("RuntimeDir with a squatted path = %s, %v; want %s", got, err, want)
	}
	if Squatted() != squat {
		t.Fatalf("Squatted() = %q, want %q", Squatted(), squat)
	}
	// A root that others can write to without the sticky bit.
	os.Remove(squat)
	os.Chmod(root, 0o777)
	if got, err := RuntimeDir(); err != nil || got != want {
		t.Fatalf("RuntimeDir in a non-sticky shared root = %s, %v; want %s", got, err, want)
	}
	if _, err := os.Stat(squat); err == nil {
		t.Fatal("a lock directory was made in a non-sticky shared root")
	}
}

// TestRuntimeDirStaysPrivate (S23, S29): once a process of the user took
// its locks under the home directory (the shared path was squatted), the
// lock directory stays there after the squatter removes its squat: a
// squatter cannot split the user's processes (one started while squatted,
// one after) over two lock directories, where they would refresh the same
// refresh token at once.
func TestRuntimeDirStaysPrivate(t *testing.T) {
	defer func(root string, home func() (string, error)) {
		lockRoot, userHome = root, home
		squattedMu.Lock()
		squattedPath = ""
		squattedMu.Unlock()
	}(lockRoot, userHome)
	root, home := t.TempDir(), t.TempDir()
	lockRoot = root
	userHome = func() (string, error) { return home, nil }
	squat := filepath.Join(root, "oauthsafe-"+strconv.Itoa(os.Getuid()))
	if err := os.WriteFile(squat, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	private, err := RuntimeDir()
	if err != nil || private != filepath.Join(home, ".cache", "oauthsafe", "run", "locks") {
		t.Fatalf("RuntimeDir with a squatted path = %s, %v", private, err)
	}
	unlock, err := Lock(context.Background(), private, "k")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	os.Remove(squat) // the squatter leaves
	if got, err := RuntimeDir(); err != nil || got != private {
		t.Fatalf("RuntimeDir after the squat is gone = %s, %v; want %s, where a process of the user takes its locks", got, err, private)
	}
}

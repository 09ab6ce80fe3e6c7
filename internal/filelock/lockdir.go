package filelock

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
)

// The lock directory must be the same for every process of one user,
// whatever its environment: a terminal (XDG_RUNTIME_DIR set), a cron job
// (no XDG_RUNTIME_DIR, maybe another TMPDIR), a systemd unit and the CLI
// agent all refresh the same stored refresh token, and two of them that
// took their locks in two directories would present one refresh token
// twice (S23, S29). So it is derived from the user id and the user
// database alone; XDG_RUNTIME_DIR, TMPDIR, HOME and XDG_CACHE_HOME are
// never read. /run/user/<uid> is not used either: it exists only while the
// user has a session (or lingers), so a cron job and a terminal could see
// it at different times.

// lockRoot is the fixed, shared base of the lock directory (never
// os.TempDir, which follows TMPDIR). A variable for tests.
var lockRoot = "/tmp"

// userHome returns the current user's home directory from the user
// database (passwd, or the Windows profile), never from HOME. A variable
// for tests.
var userHome = func() (string, error) {
	var u *user.User
	var err error
	if runtime.GOOS == "windows" {
		u, err = user.Current()
	} else {
		u, err = user.LookupId(strconv.Itoa(os.Getuid()))
	}
	if err != nil {
		return "", err
	}
	if !filepath.IsAbs(u.HomeDir) {
		return "", errors.New("no absolute home directory")
	}
	return u.HomeDir, nil
}

// RuntimeDir returns the per-user directory for lock files, the same for
// every process of the user whatever its environment variables:
// /tmp/oauthsafe-<uid>/locks, where /tmp/oauthsafe-<uid> must be a 0700
// directory of the user (created if missing). When that path is taken by
// another user (a squatter: another owner, or not a directory), or /tmp is
// not a root-owned directory that is sticky or closed to others, it is
// <home>/.cache/oauthsafe/run/locks instead, with <home> from the user
// database (os/user.LookupId of the uid, not HOME), and Squatted reports a
// squatted path. Once that private directory holds the user's locks, it is
// the lock directory from then on, also when the squat is gone, so that
// processes started before and after its removal exclude each other. On Windows (no uid, no shared /tmp) it is
// <profile>\.cache\oauthsafe\run\locks, the profile directory from the
// user's account. A directory of the user that is open to others is
// refused (ErrInsecure): remove it or chmod it 0700.
//
// A process with a private /tmp of its own (systemd's PrivateTmp=yes, a
// container) sees another /tmp/oauthsafe-<uid>: such a unit must not
// share refresh tokens with processes outside it, or must run without
// PrivateTmp. Lock creates the returned directory with mode 0700.
func RuntimeDir() (string, error) {
	if runtime.GOOS != "windows" && os.Getuid() >= 0 {
		// Once a process of the user took its locks in the private
		// directory, every later one does too: a squatter that removes
		// its squat cannot split the user's processes over two lock
		// directories.
		if home, err := userHome(); err == nil {
			private := filepath.Join(home, ".cache", "oauthsafe", "run", "locks")
			if fi, err := os.Lstat(private); err == nil && fi.IsDir() && OwnedByUs(fi) {
				return private, nil
			}
		}
		dir := filepath.Join(lockRoot, "oauthsafe-"+strconv.Itoa(os.Getuid()))
		if fi, err := os.Stat(lockRoot); err == nil && sharedRootOK(fi) {
			err := mkdirSecure(dir)
			if err == nil {
				return filepath.Join(dir, "locks"), nil
			}
			if !squatted(dir) {
				return "", err
			}
			squattedMu.Lock()
			squattedPath = dir
			squattedMu.Unlock()
		}
	}
	home, err := userHome()
	if err != nil {
		return "", fmt.Errorf("%w: no shared lock directory, and no home directory in the user database for a private one: %v", ErrInsecure, err)
	}
	alt := filepath.Join(home, ".cache", "oauthsafe", "run")
	if err := mkdirSecure(alt); err != nil {
		return "", fmt.Errorf("the private lock directory: %w", err)
	}
	return filepath.Join(alt, "locks"), nil
}

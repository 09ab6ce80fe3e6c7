// Package filelock takes exclusive per-user file locks that the OS releases
// when the holder dies.
package filelock

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrInsecure is tokenstore.ErrInsecurePermissions: a lock directory (or a
// file) that other users could write to, or that is not what it should be.
var ErrInsecure = errors.New("tokenstore: insecure file permissions")

// ErrUnsupported means this platform has no file locking.
var ErrUnsupported = errors.New("tokenstore: store unavailable: no file locking on this platform")

// UserDir returns oauthsafe's private per-user directory, creating it with
// mode 0700: $XDG_RUNTIME_DIR/oauthsafe when XDG_RUNTIME_DIR is set (a
// 0700 per-user tmpfs on systemd systems), else $TMPDIR/oauthsafe-<uid>
// (os.TempDir when TMPDIR is unset; the uid, or the user name where there
// is none). It refuses a directory of the current user that is open to
// others (remove it or chmod it 0700). A temp-dir path that another user
// made first (a squatter: owned by someone else, or not a directory, which
// the user cannot remove from a sticky /tmp) is left alone: UserDir then
// uses <user cache dir>/oauthsafe/run (os.UserCacheDir, under the user's
// home, which no other user can pre-create), with the same checks, and
// Squatted reports the squatted path. getenv reads the environment; nil
// means os.Getenv. The CLI agent's socket lives in it; the lock files of
// the keyring store do not (RuntimeDir reads no environment).
func UserDir(getenv func(string) string) (string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if d := getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		dir := filepath.Join(d, "oauthsafe")
		if err := mkdirSecure(dir); err != nil {
			return "", err
		}
		return dir, nil
	}
	id := strconv.Itoa(os.Getuid())
	if os.Getuid() < 0 { // Windows: no uid; the temp dir is per-user there
		u, err := user.Current()
		if err != nil {
			return "", fmt.Errorf("tokenstore: no user for the private dir: %w", err)
		}
		id = strings.Map(func(r rune) rune {
			if r == '\\' || r == '/' || r == ':' {
				return '_'
			}
			return r
		}, u.Username)
	}
	tmp := getenv("TMPDIR")
	if tmp == "" || !filepath.IsAbs(tmp) {
		tmp = os.TempDir()
	}
	dir := filepath.Join(tmp, "oauthsafe-"+id)
	err := mkdirSecure(dir)
	if err == nil || !squatted(dir) {
		return dir, err
	}
	// Another user holds the temp-dir path: use the private fallback.
	cache := getenv("XDG_CACHE_HOME")
	if cache == "" || !filepath.IsAbs(cache) {
		home := getenv("HOME")
		if home == "" || !filepath.IsAbs(home) {
			return "", fmt.Errorf("%w: %s belongs to another user, and there is no home directory for a private one", ErrInsecure, dir)
		}
		cache = filepath.Join(home, ".cache")
	}
	alt := filepath.Join(cache, "oauthsafe", "run")
	if err := mkdirSecure(alt); err != nil {
		return "", fmt.Errorf("%s belongs to another user; the private fallback: %w", dir, err)
	}
	squattedMu.Lock()
	squattedPath = dir
	squattedMu.Unlock()
	return alt, nil
}

var (
	squattedMu   sync.Mutex
	squattedPath string
)

// Squatted returns the temp-dir path UserDir found taken by another user
// (and avoided), or "" when none was. Callers report it: someone else on
// the machine made it, which is worth an administrator's look.
func Squatted() string {
	squattedMu.Lock()
	defer squattedMu.Unlock()
	return squattedPath
}

// squatted reports whether dir exists and is not the current user's own
// directory: a symlink or file, or a directory owned by another user.
func squatted(dir string) bool {
	fi, err := os.Lstat(dir)
	if err != nil {
		return false
	}
	return !fi.IsDir() || !OwnedByUs(fi)
}

// Lock takes the exclusive lock named name in dir, creating dir with mode
// 0700 if needed and refusing it unless it is a directory owned by the
// current user and closed to others. It waits, polling with backoff, until
// the lock is free or ctx ends (then it returns an error wrapping
// ctx.Err()). The lock is an flock (unix) or LockFileEx (Windows) lock on a
// file named after a hash of name; it is exclusive also between goroutines
// of one process, and the OS releases it when the holding process dies. The
// returned unlock releases it and must be called exactly once. Lock files
// are never deleted (deleting would race with waiters). Lock is safe for
// concurrent use.
func Lock(ctx context.Context, dir, name string) (unlock func() error, err error) {
	if err := mkdirSecure(dir); err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte("oauthsafe/tokenstore/lock/v1\x00" + name))
	path := filepath.Join(dir, hex.EncodeToString(sum[:16])+".lock")
	return lockPath(ctx, path)
}

// LockFile takes the exclusive lock on path itself (created 0600 if
// missing), as Lock does; the caller has checked path's directory.
func LockFile(ctx context.Context, path string) (unlock func() error, err error) {
	return lockPath(ctx, path)
}

func lockPath(ctx context.Context, path string) (unlock func() error, err error) {
	f, err := openLockFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenstore: lock file: %w", err)
	}
	wait := time.Millisecond
	for {
		ok, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("tokenstore: lock: %w", err)
		}
		if ok {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("tokenstore: waiting for a lock: %w", context.Cause(ctx))
		case <-t.C:
		}
		wait = min(wait*2, 20*time.Millisecond)
	}
	var once sync.Once
	return func() error {
		err := errors.New("tokenstore: unlock called twice")
		once.Do(func() {
			uerr := unlockFile(f)
			cerr := f.Close()
			err = cerr
			if uerr != nil {
				err = fmt.Errorf("tokenstore: unlock: %w", uerr)
			}
		})
		return err
	}, nil
}

// mkdirSecure creates dir with mode 0700 if missing and checks it.
func mkdirSecure(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("tokenstore: private dir: %w", err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("tokenstore: private dir: %w", err)
		}
	}
	return checkLockDir(dir)
}

// checkLockDir refuses a lock directory that others may write to: they could
// hold our lock forever or swap lock files.
func checkLockDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("tokenstore: private dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrInsecure, dir)
	}
	if InsecureMode(fi.Mode(), 0o077) || !OwnedByUs(fi) {
		return fmt.Errorf("%w: %s is not a 0700 directory of the current user; remove it", ErrInsecure, dir)
	}
	return nil
}

package tokenstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// DefaultLockDir returns the directory Lock uses when given "":
// os.UserCacheDir()/oauthsafe/locks. It is safe for concurrent use.
func DefaultLockDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("tokenstore: no user cache dir for locks: %w", err)
	}
	return filepath.Join(d, "oauthsafe", "locks"), nil
}

// Lock takes the cross-process lock for key in dir ("" means
// DefaultLockDir), creating dir with mode 0700 if needed. It waits, polling
// with backoff, until the lock is free or ctx ends (then it returns an error
// wrapping ctx.Err()). The lock is an flock (unix) or LockFileEx (Windows)
// lock on a file named after a hash of key; it is exclusive also between
// goroutines of one process. The returned unlock releases it and must be
// called exactly once. Lock files are never deleted (deleting would race
// with waiters). Lock is safe for concurrent use.
func Lock(ctx context.Context, dir, key string) (unlock func() error, err error) {
	if dir == "" {
		if dir, err = DefaultLockDir(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tokenstore: lock dir: %w", err)
	}
	if err := checkLockDir(dir); err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte("oauthsafe/tokenstore/lock/v1\x00" + key))
	path := filepath.Join(dir, hex.EncodeToString(sum[:16])+".lock")
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
			return nil, fmt.Errorf("tokenstore: waiting for the refresh lock: %w", ctx.Err())
		case <-t.C:
		}
		wait = min(wait*2, 50*time.Millisecond)
	}
	done := false
	return func() error {
		if done {
			return errors.New("tokenstore: unlock called twice")
		}
		done = true
		uerr := unlockFile(f)
		cerr := f.Close()
		if uerr != nil {
			return fmt.Errorf("tokenstore: unlock: %w", uerr)
		}
		return cerr
	}, nil
}

// checkLockDir refuses a lock directory that others may write to: they could
// hold our lock forever or swap lock files.
func checkLockDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("tokenstore: lock dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: lock dir is not a directory", ErrInsecurePermissions)
	}
	if insecureMode(fi.Mode(), 0o022) || !ownedByUs(fi) {
		return fmt.Errorf("%w: lock dir %s is writable by others", ErrInsecurePermissions, dir)
	}
	return nil
}

//go:build !unix && !windows

package tokenstore

import (
	"fmt"
	"io/fs"
	"os"
)

func openLockFile(path string) (*os.File, error) {
	return nil, fmt.Errorf("%w: no file locking on this platform", ErrUnavailable)
}

func tryLock(f *os.File) (bool, error) { return false, ErrUnavailable }

func unlockFile(f *os.File) error { return ErrUnavailable }

func insecureMode(m fs.FileMode, others fs.FileMode) bool { return m.Perm()&others != 0 }

func ownedByUs(fi fs.FileInfo) bool { return true }

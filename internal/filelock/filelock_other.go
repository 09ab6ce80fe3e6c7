//go:build !unix && !windows

package filelock

import (
	"fmt"
	"io/fs"
	"os"
)

func openLockFile(path string) (*os.File, error) {
	return nil, fmt.Errorf("%w: no file locking on this platform", ErrUnsupported)
}

func tryLock(f *os.File) (bool, error) { return false, ErrUnsupported }

func unlockFile(f *os.File) error { return ErrUnsupported }

func InsecureMode(m fs.FileMode, others fs.FileMode) bool { return m.Perm()&others != 0 }

func OwnedByUs(fi fs.FileInfo) bool { return true }

func sharedRootOK(fi fs.FileInfo) bool { return false }

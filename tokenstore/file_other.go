//go:build !unix

package tokenstore

import (
	"fmt"
	"io/fs"
	"os"
)

func openNoFollow(path string) (*os.File, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, err
		}
		return nil, fmt.Errorf("tokenstore: %w", err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("%w: %s is a symlink", ErrInsecurePermissions, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenstore: %w", err)
	}
	return f, nil
}

// syncDir is a no-op: directories cannot be synced this way on Windows, and
// MoveFileEx with MOVEFILE_REPLACE_EXISTING (used by os.Rename) is the
// atomic step there.
func syncDir(dir string) error { return nil }

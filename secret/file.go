package secret

import (
	"fmt"
	"io"
	"os"

	"github.com/oauthsafe/oauthsafe/strictnet"
)

// FromFile reads a client secret from the file at path (up to 64 KiB,
// surrounding white space trimmed). The file must be a regular file owned by
// the current user and readable by nobody else: mode 0600 or 0400. Any
// other mode (0644, 0640, …), another owner, a directory or a FIFO is
// refused with an error that matches both ErrSource and ErrPolicy.
// The checks are made on the opened file, so the file cannot be swapped
// between check and read. Symbolic links are followed; the checks apply to
// their target.
//
// On systems without Unix owners and modes (Windows), FromFile always
// refuses: use [FromEnv] or keyring.Secret (package tokenstore/keyring) with [FromReader] there.
//
// The error never contains the file's content. Safe for concurrent use.
func FromFile(path string) (Value, error) {
	// Stat first, so that opening a FIFO (which would block) is never tried.
	pre, err := os.Stat(path)
	if err != nil {
		return Value{}, fmt.Errorf("%w: %w", ErrSource, err)
	}
	if err := checkSecretFile(path, pre); err != nil {
		return Value{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return Value{}, fmt.Errorf("%w: %w", ErrSource, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Value{}, fmt.Errorf("%w: %w", ErrSource, err)
	}
	if !os.SameFile(pre, fi) {
		return Value{}, fmt.Errorf("%w: %s changed while being opened", ErrSource, path)
	}
	if err := checkSecretFile(path, fi); err != nil {
		return Value{}, err
	}
	return FromReader(io.LimitReader(f, maxSecretSize+1))
}

// secretFileError is a refused secret file: it matches ErrSource and strictnet.ErrPolicy.
type secretFileError struct{ reason string }

func (e *secretFileError) Error() string {
	return "secret: cannot load secret: refused by security policy: " + e.reason
}

func (e *secretFileError) Is(target error) bool {
	return target == ErrSource || target == strictnet.ErrPolicy
}

func checkSecretFile(path string, fi os.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return &secretFileError{reason: fmt.Sprintf("%s is not a regular file", path)}
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return &secretFileError{reason: fmt.Sprintf("%s has mode %04o; a secret file must be 0600 (chmod 600 %s)", path, perm, path)}
	}
	uid, ok := fileOwner(fi)
	if !ok {
		return &secretFileError{reason: "file ownership cannot be checked on this system; use FromEnv or the OS keyring"}
	}
	if me := os.Getuid(); uid != me {
		return &secretFileError{reason: fmt.Sprintf("%s is owned by uid %d, not by the current user (uid %d)", path, uid, me)}
	}
	return nil
}

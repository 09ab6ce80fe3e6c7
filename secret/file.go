package secret

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/oauthsafe/oauthsafe/internal/filecheck"

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
	f, err := openChecked(path, filecheck.Secret)
	if err != nil {
		return Value{}, err
	}
	defer f.Close()
	return FromReader(io.LimitReader(f, maxSecretSize+1))
}

// openChecked opens path after the module's file check of kind
// (internal/filecheck); a refused file is a *secretFileError.
func openChecked(path string, kind filecheck.Kind) (*os.File, error) {
	f, err := filecheck.Open(path, kind)
	var fe *filecheck.Error
	switch {
	case errors.As(err, &fe):
		return nil, &secretFileError{reason: fe.Reason}
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrSource, err)
	}
	return f, nil
}

// secretFileError is a refused secret file: it matches ErrSource and strictnet.ErrPolicy.
type secretFileError struct{ reason string }

func (e *secretFileError) Error() string {
	return "secret: cannot load secret: refused by security policy: " + e.reason
}

func (e *secretFileError) Is(target error) bool {
	return target == ErrSource || target == strictnet.ErrPolicy
}

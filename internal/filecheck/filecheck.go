// Package filecheck is the module's one check of a file that holds a
// secret or chooses whom to trust, made before the file is read, so that
// another local user cannot plant or read it. Two strengths:
//
//   - [Secret] (a client secret, a private key, sealing keys): a regular
//     file owned by the current user that no one else may read or write
//     (mode 0600 or 0400).
//   - [Trust] (CA certificates): a regular file owned by the current user
//     or by root that no one else may write (0644 is fine, 0664 is not).
//
// A FIFO, a device or a directory is refused before it is opened (opening
// a FIFO would block). The checks are made again on the opened file, which
// must be the one checked, so the file cannot be swapped in between.
// Symbolic links are followed; the checks apply to their target.
//
// On systems without Unix owners and modes (Windows), Secret files are
// refused (ownership cannot be checked) and Trust files get only the
// regular-file check.
package filecheck

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Kind is a check's strength.
type Kind int

const (
	// Secret: owned by the current user, no access for group or others.
	Secret Kind = iota + 1
	// Trust: owned by the current user or root, not writable by group or
	// others.
	Trust
)

// Error is a file the check refused. Reason says why and what to do; it
// never holds the file's content.
type Error struct {
	Path   string
	Reason string
}

func (e *Error) Error() string { return e.Reason }

// ErrTooLarge is returned by ReadFile for a file over its bound.
var ErrTooLarge = errors.New("filecheck: file too large")

// Check checks fi, the FileInfo of path, for kind.
func Check(path string, fi fs.FileInfo, kind Kind) error {
	if !fi.Mode().IsRegular() {
		return &Error{Path: path, Reason: fmt.Sprintf("%s is not a regular file", path)}
	}
	uid, ok := fileOwner(fi)
	perm := fi.Mode().Perm()
	switch kind {
	case Secret:
		if perm&0o077 != 0 {
			return &Error{Path: path, Reason: fmt.Sprintf("%s has mode %04o; a secret file must be 0600 (chmod 600 %s)", path, perm, path)}
		}
		if !ok {
			return &Error{Path: path, Reason: "file ownership cannot be checked on this system; use FromEnv or the OS keyring"}
		}
		if me := os.Getuid(); uid != me {
			return &Error{Path: path, Reason: fmt.Sprintf("%s is owned by uid %d, not by the current user (uid %d)", path, uid, me)}
		}
	case Trust:
		if !ok {
			return nil
		}
		if perm&0o022 != 0 {
			return &Error{Path: path, Reason: fmt.Sprintf("%s has mode %04o: others could change whom you trust; it must not be writable by group or others (chmod go-w %s)", path, perm, path)}
		}
		if me := os.Getuid(); uid != me && uid != 0 {
			return &Error{Path: path, Reason: fmt.Sprintf("%s is owned by uid %d, neither the current user (uid %d) nor root", path, uid, me)}
		}
	default:
		return &Error{Path: path, Reason: "filecheck: unknown kind"}
	}
	return nil
}

// Open checks path for kind, opens it and checks the opened file again
// (it must be the file checked). Errors are an *Error for a refused file,
// or the error of os.Stat, os.Open or Stat.
func Open(path string, kind Kind) (*os.File, error) {
	pre, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := Check(path, pre, kind); err != nil {
		return nil, err
	}
	if beforeOpen != nil {
		beforeOpen(path)
	}
	// Opened without blocking: a FIFO swapped in after the check must not
	// hang the open (it is then refused as another file below).
	f, err := os.OpenFile(path, openFlags, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !os.SameFile(pre, fi) {
		f.Close()
		return nil, &Error{Path: path, Reason: fmt.Sprintf("%s changed while being opened", path)}
	}
	if err := Check(path, fi, kind); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ReadFile is Open, then reads the whole file if it holds at most max
// bytes, else ErrTooLarge.
func ReadFile(path string, kind Kind, max int64) ([]byte, error) {
	f, err := Open(path, kind)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: %s is over %d bytes", ErrTooLarge, path, max)
	}
	return b, nil
}

// beforeOpen, when set by a test, runs between the check of path and its
// opening: the window in which another file can be swapped in.
var beforeOpen func(path string)

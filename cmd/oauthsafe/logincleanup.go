package main

import (
	"errors"
	"os"
)

// storeLeftovers are the file store's files a login is about to create:
// the encrypted file and its lock beside it, those that do not exist yet.
// A login that fails removes them, so that a failed first login leaves
// nothing behind; a file that existed before (other profiles' records) is
// never touched.
type storeLeftovers struct{ paths []string }

// newStoreLeftovers notes which of p's file-store files do not exist yet;
// nil for the keyring.
func newStoreLeftovers(p *profile) *storeLeftovers {
	if p.storeKind() != storeFile {
		return nil
	}
	path := p.StoreFile
	if path == "" {
		var err error
		if path, err = defaultStoreFile(); err != nil {
			return nil
		}
	}
	l := &storeLeftovers{}
	for _, q := range []string{path, path + ".lock"} {
		if _, err := os.Lstat(q); errors.Is(err, os.ErrNotExist) {
			l.paths = append(l.paths, q)
		}
	}
	return l
}

// remove deletes the files the failed login created.
func (l *storeLeftovers) remove() {
	if l == nil {
		return
	}
	for _, q := range l.paths {
		os.Remove(q)
	}
}

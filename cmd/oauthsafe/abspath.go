package main

import (
	"errors"
	"fmt"
	"path/filepath"
)

// absPath is a flag holding a file path made absolute when it is set, so
// that a profile never keeps a path the working directory would resolve:
// a relative --ca-file would let whatever directory a later command runs
// in choose the trust anchor (S2), a relative secret file which secret is
// sent (S16).
type absPath string

func (a *absPath) String() string { return string(*a) }

func (a *absPath) Set(v string) error {
	if v == "" {
		*a = ""
		return nil
	}
	abs, err := filepath.Abs(v)
	if err != nil {
		return err
	}
	*a = absPath(abs)
	return nil
}

// errRelativePath: a profile (saved by an older version) holds a relative
// file path.
var errRelativePath = errors.New("the profile holds a relative path")

// checkPaths refuses a profile whose CA or secret file path is relative:
// the working directory would choose the file.
func (p *profile) checkPaths() error {
	for flag, path := range map[string]string{"--ca-file": p.CAFile, "--client-secret-file": p.ClientSecretFile} {
		if path != "" && !filepath.IsAbs(path) {
			return fmt.Errorf("%w for %s (%s), which the working directory would resolve: log in again with an absolute %s", errRelativePath, flag, clean(path), flag)
		}
	}
	return nil
}

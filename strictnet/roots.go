package strictnet

import (
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/oauthsafe/oauthsafe/internal/filecheck"
)

// maxRootsFileSize bounds a CA bundle (the system bundle is about 220 KB).
const maxRootsFileSize = 4 << 20

// errNoPEM: a CA file holds no PEM certificate.
var errNoPEM = errors.New("strictnet: cannot load CA certificates: the file holds no PEM certificate")

// RootsFromFile returns a pool of the PEM certificates in the file at
// path, for Config.RootCAs. Build it once and share it: one Config (or
// one pool) serves oauthclient (Config.HTTP), apiclient (Config.HTTP) and
// validate (a client from NewClient, or oauthclient.Client.HTTPClient).
//
// The file chooses whom every call trusts, so it is checked first, on the
// opened file: a regular file (no FIFO, no directory), owned by the
// current user or root and not writable by group or others (0644 is fine;
// 0664, 0666 or another user's file are not). A refused file is a
// [*PolicyError] (it matches ErrPolicy); a missing or unreadable file
// gives the os error (errors.Is(err, fs.ErrNotExist) for a missing one),
// and a file that holds no PEM certificate an error saying so. Pass an absolute path: a relative one is resolved against
// the working directory, which would then choose the trust anchor. Safe
// for concurrent use.
func RootsFromFile(path string) (*x509.CertPool, error) {
	b, err := filecheck.ReadFile(path, filecheck.Trust, maxRootsFileSize)
	var fe *filecheck.Error
	switch {
	case errors.As(err, &fe):
		return nil, &PolicyError{Reason: fe.Reason}
	case err != nil:
		return nil, fmt.Errorf("strictnet: cannot load CA certificates: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%w (%s)", errNoPEM, path)
	}
	return pool, nil
}

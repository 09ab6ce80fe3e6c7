package assertion

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/jwtassert"
	"github.com/oauthsafe/oauthsafe/secret"
)

// File returns a Source that reads the assertion from the file at path,
// which a platform writes and rotates (a Kubernetes projected
// service-account token, a file a sidecar refreshes). The file gets the
// checks of a secret file (secret.FromFile: a regular file owned by this
// user, mode 0600 or 0400; refused with an error matching ErrSource,
// secret.ErrSource and strictnet.ErrPolicy). The assertion read is kept in
// memory until the file changes (another file, size or modification time,
// as an atomic rename or a symlink swap makes) or until its exp,
// whichever comes first; an expired assertion is refused with ErrExpired
// and never sent. The audience given to Assertion is ignored: the
// platform chose it. An empty path fails every call with ErrSource. The
// source is safe for concurrent use.
func File(path string) Source {
	return &fileSource{path: path, now: time.Now}
}

// fileSource is the Source of File; now is its clock. cached is the
// parsed assertion (redacting itself), never the string.
type fileSource struct {
	path string
	now  func() time.Time

	mu     sync.Mutex
	cached jwtassert.JWT
	stat   os.FileInfo
}

// Assertion returns the file's assertion, read again when the file
// changed or the kept one expired.
func (f *fileSource) Assertion(_ context.Context, _ string) (string, error) {
	a, err := f.take()
	if err != nil {
		return "", err
	}
	return a.Reveal(), nil
}

// take returns the kept assertion while the file is unchanged and the
// assertion unexpired, else reads and parses the file again.
func (f *fileSource) take() (jwtassert.JWT, error) {
	if f.path == "" {
		return jwtassert.JWT{}, fmt.Errorf("%w: File needs a path", ErrSource)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.now()
	fi, err := os.Stat(f.path)
	if err != nil {
		f.cached, f.stat = jwtassert.JWT{}, nil
		return jwtassert.JWT{}, fmt.Errorf("%w: %w", ErrSource, err)
	}
	if f.stat != nil && sameVersion(f.stat, fi) && f.cached.Expiry().After(t) {
		return f.cached, nil
	}
	f.cached, f.stat = jwtassert.JWT{}, nil
	v, err := secret.FromFile(f.path)
	if err != nil {
		return jwtassert.JWT{}, fmt.Errorf("%w: %w", ErrSource, err)
	}
	a, err := jwtassert.Parse(v.Reveal(), t)
	if err != nil {
		return jwtassert.JWT{}, err
	}
	f.cached, f.stat = a, fi
	return a, nil
}

// sameVersion reports whether two stats are of the same file content as
// far as a rotation shows: the same file, size and modification time.
func sameVersion(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

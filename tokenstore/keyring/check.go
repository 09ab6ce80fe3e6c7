package keyring

import (
	"errors"

	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// The errors of Check: each matches tokenstore.ErrUnavailable and says
// what to do.
var (
	// ErrNoBus means there is no D-Bus session bus to reach a Secret
	// Service on (SSH without a desktop session, a container, a service).
	ErrNoBus = errors.New("tokenstore/keyring: no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset or unreachable): start a desktop or D-Bus session, or keep the token in an encrypted file")
	// ErrNoSecretService means the session bus has no Secret Service
	// (gnome-keyring, KWallet, KeePassXC) running or startable.
	ErrNoSecretService = errors.New("tokenstore/keyring: no Secret Service on the D-Bus session bus: start one (for example gnome-keyring-daemon --start --components=secrets), or keep the token in an encrypted file")
	// ErrKeyringLocked means the collection the keyring uses is locked and
	// nothing can show an unlock prompt here.
	ErrKeyringLocked = errors.New("tokenstore/keyring: the keyring is locked: unlock it (log in to the desktop, or gnome-keyring-daemon --unlock), or keep the token in an encrypted file")
)

// checkError makes err (one of the errors above) match
// tokenstore.ErrUnavailable too.
type checkError struct{ err error }

func (e *checkError) Error() string { return e.err.Error() }
func (e *checkError) Unwrap() []error {
	return []error{e.err, tokenstore.ErrUnavailable}
}

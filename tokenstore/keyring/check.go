package keyring

import (
	"context"
	"errors"

	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// Check tells, within about 2 s a step, whether the keyring can be used
// without a prompt, from definite answers only (a step that runs out of
// time gives nil, not a verdict). On Linux and the BSDs it returns an
// [*UnavailableError] when there is no D-Bus session bus (never starting
// one: no dbus-launch), when the bus has no Secret Service running or
// startable, or when its collection is locked (a desktop can show an
// unlock prompt for it: call Check only where none can, such as a
// terminal over SSH). Each matches tokenstore.ErrUnavailable. nil means
// usable. On macOS and Windows it returns nil. Safe for concurrent use.
func Check(ctx context.Context) error { return check(ctx) }

// UnavailableError is why the OS keyring cannot be used on this machine,
// as [Check] finds it (a Store runs Check before its calls until the
// keyring has answered once). Match it with errors.As; the error Check
// returns also matches tokenstore.ErrUnavailable. Its message says what
// to do.
type UnavailableError struct {
	// Reason is what is missing:
	//   - "no-bus": no D-Bus session bus to reach a Secret Service on
	//     (SSH without a desktop session, a container, a service);
	//   - "no-secret-service": the session bus has no Secret Service
	//     (gnome-keyring, KWallet, KeePassXC) running or startable;
	//   - "locked": the collection the keyring uses is locked, and
	//     nothing here can show an unlock prompt.
	Reason string
}

// The reasons of an UnavailableError.
const (
	reasonNoBus           = "no-bus"
	reasonNoSecretService = "no-secret-service"
	reasonLocked          = "locked"
)

func (e *UnavailableError) Error() string {
	switch e.Reason {
	case reasonNoBus:
		return "tokenstore/keyring: no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset or unreachable): start a desktop or D-Bus session, or keep the token in an encrypted file"
	case reasonNoSecretService:
		return "tokenstore/keyring: no Secret Service on the D-Bus session bus: start one (for example gnome-keyring-daemon --start --components=secrets), or keep the token in an encrypted file"
	case reasonLocked:
		return "tokenstore/keyring: the keyring is locked: unlock it (log in to the desktop, or gnome-keyring-daemon --unlock), or keep the token in an encrypted file"
	}
	return "tokenstore/keyring: the keyring cannot be used here"
}

// unavailable is Check's error for reason: an *UnavailableError that
// matches tokenstore.ErrUnavailable too.
func unavailable(reason string) error {
	return &checkError{&UnavailableError{Reason: reason}}
}

// checkError makes an *UnavailableError match tokenstore.ErrUnavailable.
type checkError struct{ err *UnavailableError }

func (e *checkError) Error() string { return e.err.Error() }
func (e *checkError) Unwrap() []error {
	return []error{e.err, tokenstore.ErrUnavailable}
}

// reasonOf is the Reason of the *UnavailableError in err's chain, or "".
func reasonOf(err error) string {
	var ue *UnavailableError
	if errors.As(err, &ue) {
		return ue.Reason
	}
	return ""
}

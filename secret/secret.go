// Package secret holds secrets that never print: a [Value] shows as
// redacted under every fmt verb, slog and JSON, and is loaded from the
// environment, a private file or a reader, never from a string literal.
//
// Where to start: a web backend or a service loads its client secret with
// [FromEnv] or [FromFile] and sets it as oauthclient.Config.ClientSecret,
// or its private_key_jwt key with [PrivateKeyFromFile] as
// oauthclient.Config.PrivateKey.
// Errors match [ErrSource] (and strictnet.ErrPolicy for a file whose owner
// or mode is refused).
package secret

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// Value holds a secret (a client secret, a password). It never shows its
// value when printed with any fmt verb, logged with slog, or encoded as
// JSON. The zero value is an empty secret (a public client). A Value is
// immutable and safe for
// concurrent use.
//
// There is deliberately no constructor that takes a string literal: a secret
// typed into source code ends up in version control, binaries and crash
// reports. Load it with [FromEnv], [FromFile], or [FromReader] (for a secrets
// manager's answer, or keyring.Secret of package tokenstore/keyring for
// the OS keyring).
//
// It prints through [Value.Format] (every fmt verb, slog's text handler)
// and [Value.MarshalJSON] (encoding/json, slog's JSON handler), both
// redacted; it has no other way to print.
type Value struct {
	v string
}

// Reveal returns the secret's value. Call it only to put the value on the
// wire, or to compare two secrets in constant time
// (crypto/subtle.ConstantTimeCompare on their Reveal).
func (s Value) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Value) IsZero() bool { return s.v == "" }

func (s Value) redact() string {
	if s.v == "" {
		return "Secret(empty)"
	}
	return "Secret(" + safetext.Redacted + ")"
}

// Format implements fmt.Formatter so every verb (%v %+v %#v %q %s %x …)
// redacts. fmt calls it before String or GoString, and slog's text handler
// prints through it, so it is the one way a Value prints.
func (s Value) Format(f fmt.State, verb rune) { io.WriteString(f, s.redact()) }

// MarshalJSON redacts the value, for encoding/json and slog's JSON handler:
// a Value shows as "Secret(redacted)" or "Secret(empty)", so a JSON dump of
// a configuration tells whether the secret is set without showing it.
func (s Value) MarshalJSON() ([]byte, error) { return []byte(`"` + s.redact() + `"`), nil }

// ErrSource is returned when a secret cannot be loaded from its source:
// an unset variable, an unreadable, oversized or empty source, a secret
// file whose owner or mode is refused (that error matches
// strictnet.ErrPolicy too), or a key file that holds no usable private
// key (see [PrivateKeyFromFile]). It is the package's one error.
var ErrSource = errors.New("secret: cannot load secret")

// maxSecretSize bounds what a secret source may return.
const maxSecretSize = 64 << 10

// FromEnv reads a secret from the environment variable name. An unset or
// empty variable is an error wrapping [ErrSource].
func FromEnv(name string) (Value, error) {
	v, ok := os.LookupEnv(name)
	if !ok || strings.TrimSpace(v) == "" {
		return Value{}, fmt.Errorf("%w: environment variable %s is not set", ErrSource, name)
	}
	return Value{v: strings.TrimSpace(v)}, nil
}

// FromReader reads a secret from r (for example a secrets manager's
// response), up to 64 KiB, trimming surrounding white space.
func FromReader(r io.Reader) (Value, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxSecretSize+1))
	if err != nil {
		return Value{}, fmt.Errorf("%w: %w", ErrSource, err)
	}
	if len(b) > maxSecretSize {
		return Value{}, fmt.Errorf("%w: secret larger than 64 KiB", ErrSource)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return Value{}, fmt.Errorf("%w: empty secret", ErrSource)
	}
	return Value{v: string(b)}, nil
}

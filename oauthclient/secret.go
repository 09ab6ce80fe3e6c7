package oauthclient

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

const redacted = safetext.Redacted

// Secret holds a client secret. It never shows its value when printed with
// any fmt verb, logged with slog, or encoded as JSON. The zero value is an
// empty secret (a public client). A Secret is immutable and safe for
// concurrent use.
//
// There is deliberately no constructor that takes a string literal: a secret
// typed into source code ends up in version control, binaries and crash
// reports. Load it with [SecretFromEnv], [SecretFromFile], [SecretFromReader] (with keyring.Secret of package tokenstore/keyring for the OS keyring)
// or, for secrets managers, [SecretFromReader].
type Secret struct {
	v string
}

// Reveal returns the secret's value. Call it only to put the value on the wire.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

// Equal compares two secrets in constant time.
func (s Secret) Equal(o Secret) bool {
	return subtle.ConstantTimeCompare([]byte(s.v), []byte(o.v)) == 1
}

func (s Secret) redact() string {
	if s.v == "" {
		return "Secret(empty)"
	}
	return "Secret(" + redacted + ")"
}

// String implements fmt.Stringer and redacts the value.
func (s Secret) String() string { return s.redact() }

// GoString implements fmt.GoStringer and redacts the value.
func (s Secret) GoString() string { return s.redact() }

// Format implements fmt.Formatter so every verb (%v %+v %#v %q %s %x …) redacts.
func (s Secret) Format(f fmt.State, verb rune) { io.WriteString(f, s.redact()) }

// LogValue implements slog.LogValuer and redacts the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.redact()) }

// MarshalJSON redacts the value.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.redact() + `"`), nil }

// MarshalText redacts the value (encoding.TextMarshaler users such as some loggers).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.redact()), nil }

// ErrSecretSource is returned when a secret cannot be loaded from its source.
var ErrSecretSource = errors.New("oauthclient: cannot load secret")

// maxSecretSize bounds what a secret source may return.
const maxSecretSize = 64 << 10

// SecretFromEnv reads a secret from the environment variable name. An unset or
// empty variable is an error wrapping [ErrSecretSource].
func SecretFromEnv(name string) (Secret, error) {
	v, ok := os.LookupEnv(name)
	if !ok || strings.TrimSpace(v) == "" {
		return Secret{}, fmt.Errorf("%w: environment variable %s is not set", ErrSecretSource, name)
	}
	return Secret{v: strings.TrimSpace(v)}, nil
}

// SecretFromReader reads a secret from r (for example a secrets manager's
// response), up to 64 KiB, trimming surrounding white space.
func SecretFromReader(r io.Reader) (Secret, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxSecretSize+1))
	if err != nil {
		return Secret{}, fmt.Errorf("%w: %v", ErrSecretSource, err)
	}
	if len(b) > maxSecretSize {
		return Secret{}, fmt.Errorf("%w: secret larger than 64 KiB", ErrSecretSource)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return Secret{}, fmt.Errorf("%w: empty secret", ErrSecretSource)
	}
	return Secret{v: string(b)}, nil
}

package validate

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

func (c IDTokenCheck) redact() string {
	set := func(s string) string {
		if s == "" {
			return "none"
		}
		return safetext.Redacted
	}
	return "validate.IDTokenCheck{nonce=" + set(c.Nonce) + ", access_token=" + set(c.AccessToken) + ", code=" + set(c.Code) + "}"
}

// String implements fmt.Stringer; it never shows the nonce, the access
// token or the code (S12).
func (c IDTokenCheck) String() string { return c.redact() }

// GoString implements fmt.GoStringer as String does.
func (c IDTokenCheck) GoString() string { return c.redact() }

// Format prints String's summary under every fmt verb.
func (c IDTokenCheck) Format(f fmt.State, verb rune) { io.WriteString(f, c.redact()) }

// LogValue implements slog.LogValuer with String's summary.
func (c IDTokenCheck) LogValue() slog.Value { return slog.StringValue(c.redact()) }

// MarshalJSON encodes String's summary as a JSON string.
func (c IDTokenCheck) MarshalJSON() ([]byte, error) { return json.Marshal(c.redact()) }

package callback

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// This file makes Config and Handler print without their cookie keys or
// the client's secret (S12, S16).

func (c Config) redact() string {
	return fmt.Sprintf("callback.Config{client=%v, keys=%d (%s), landing_url=%s, cookie_prefix=%s}",
		c.Client, len(c.Keys), safetext.Redacted, safetext.Clean(c.LandingURL, 200), safetext.Clean(c.CookiePrefix, 64))
}

// String implements fmt.Stringer; it never shows a key or a secret.
func (c Config) String() string { return c.redact() }

// GoString implements fmt.GoStringer as String does.
func (c Config) GoString() string { return c.redact() }

// Format prints String's summary under every fmt verb.
func (c Config) Format(f fmt.State, verb rune) { io.WriteString(f, c.redact()) }

// LogValue implements slog.LogValuer with String's summary.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.redact()) }

// MarshalJSON encodes String's summary as a JSON string.
func (c Config) MarshalJSON() ([]byte, error) { return json.Marshal(c.redact()) }

func (h Handler) redact() string {
	mode := "cookie"
	if h.store != nil {
		mode = "store"
	}
	return fmt.Sprintf("callback.Handler{client=%v, mode=%s, redirect=%s, keys=%s}", h.client, mode, safetext.Clean(h.redirect, 200), safetext.Redacted)
}

// String implements fmt.Stringer; it never shows a key or a secret.
func (h Handler) String() string { return h.redact() }

// GoString implements fmt.GoStringer as String does.
func (h Handler) GoString() string { return h.redact() }

// Format prints String's summary under every fmt verb.
func (h Handler) Format(f fmt.State, verb rune) { io.WriteString(f, h.redact()) }

// LogValue implements slog.LogValuer with String's summary.
func (h Handler) LogValue() slog.Value { return slog.StringValue(h.redact()) }

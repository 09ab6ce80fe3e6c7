package callback

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// This file makes Config and Handler print without their cookie keys or
// the client's secret (S12, S16). fmt calls Format for every verb and
// slog's text handler prints through it; Config, whose exported fields
// json.Marshal would show, also has MarshalJSON.

func (c Config) redact() string {
	return fmt.Sprintf("callback.Config{client=%v, keys=%d (%s), landing_url=%s, cookie_prefix=%s}",
		c.Client, len(c.Keys), safetext.Redacted, safetext.Clean(c.LandingURL, 200), safetext.Clean(c.CookiePrefix, 64))
}

// Format prints a summary without keys or secrets under every fmt verb.
func (c Config) Format(f fmt.State, verb rune) { io.WriteString(f, c.redact()) }

// MarshalJSON encodes Format's summary as a JSON string.
func (c Config) MarshalJSON() ([]byte, error) { return json.Marshal(c.redact()) }

func (h Handler) redact() string {
	mode := "cookie"
	if h.store != nil {
		mode = "store"
	}
	return fmt.Sprintf("callback.Handler{client=%v, mode=%s, redirect=%s, keys=%s}", h.client, mode, safetext.Clean(h.redirect, 200), safetext.Redacted)
}

// Format prints a summary without keys or secrets under every fmt verb.
func (h Handler) Format(f fmt.State, verb rune) { io.WriteString(f, h.redact()) }

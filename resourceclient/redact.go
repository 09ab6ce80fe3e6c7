package resourceclient

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// This file makes Config, Credentials and Client print without the
// client secret, the tokens of a session or a grant's material (S12,
// S16): a secret is shown as set or not, never its value, under every fmt
// verb, slog and JSON.

func (cr Credentials) redact() string {
	return fmt.Sprintf("resourceclient.Credentials{issuer=%s, client_id=%s, auth_method=%s, client_secret=%s}",
		safetext.Clean(cr.Issuer, 200), safetext.Clean(cr.ClientID, 200), safetext.Clean(string(cr.AuthMethod), 40), safetext.Present(!cr.ClientSecret.IsZero()))
}

// String implements fmt.Stringer: issuer, client id and method, never the
// secret.
func (cr Credentials) String() string { return cr.redact() }

// GoString implements fmt.GoStringer as String does.
func (cr Credentials) GoString() string { return cr.redact() }

// Format prints String's summary under every fmt verb.
func (cr Credentials) Format(f fmt.State, verb rune) { io.WriteString(f, cr.redact()) }

// LogValue implements slog.LogValuer with String's summary.
func (cr Credentials) LogValue() slog.Value { return slog.StringValue(cr.redact()) }

// MarshalJSON encodes String's summary as a JSON string.
func (cr Credentials) MarshalJSON() ([]byte, error) { return json.Marshal(cr.redact()) }

func (c Config) redact() string {
	var b strings.Builder
	fmt.Fprintf(&b, "resourceclient.Config{resource=%s", safetext.Clean(c.Resource, 200))
	if c.Credentials != nil {
		b.WriteString(", credentials=" + c.Credentials.redact())
	}
	if c.ClientIDMetadataURL != "" {
		b.WriteString(", client_id_metadata_url=" + safetext.Clean(c.ClientIDMetadataURL, 200))
	}
	if len(c.ScopeCeiling) > 0 {
		b.WriteString(", scope_ceiling=[" + safetext.Clean(strings.Join(c.ScopeCeiling, " "), 200) + "]")
	}
	fmt.Fprintf(&b, ", store=%s, grant=%s, allow_loopback_http=%t}", safetext.Present(c.Store != nil), safetext.Present(c.Grant != nil), c.HTTP.AllowLoopbackHTTP)
	return b.String()
}

// String implements fmt.Stringer: the resource and what is configured,
// never a secret.
func (c Config) String() string { return c.redact() }

// GoString implements fmt.GoStringer as String does.
func (c Config) GoString() string { return c.redact() }

// Format prints String's summary under every fmt verb.
func (c Config) Format(f fmt.State, verb rune) { io.WriteString(f, c.redact()) }

// LogValue implements slog.LogValuer with String's summary.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.redact()) }

// MarshalJSON encodes String's summary as a JSON string.
func (c Config) MarshalJSON() ([]byte, error) { return json.Marshal(c.redact()) }

func (c *Client) redact() string {
	if c == nil {
		return "resourceclient.Client(nil)"
	}
	return "resourceclient.Client{" + strings.TrimPrefix(c.cfg.redact(), "resourceclient.Config{")
}

// String implements fmt.Stringer with the Config's summary: never a
// token, a secret or a key.
func (c *Client) String() string { return c.redact() }

// GoString implements fmt.GoStringer as String does.
func (c *Client) GoString() string { return c.redact() }

// Format prints String's summary under every fmt verb.
func (c *Client) Format(f fmt.State, verb rune) { io.WriteString(f, c.redact()) }

// LogValue implements slog.LogValuer with String's summary.
func (c *Client) LogValue() slog.Value { return slog.StringValue(c.redact()) }

// MarshalJSON encodes String's summary as a JSON string.
func (c *Client) MarshalJSON() ([]byte, error) { return json.Marshal(c.redact()) }

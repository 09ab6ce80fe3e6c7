package resourceclient

import (
	"fmt"
	"io"
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

// Format implements fmt.Formatter: every verb prints a summary that shows
// no secret.
func (cr Credentials) Format(f fmt.State, verb rune) { io.WriteString(f, cr.redact()) }

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

// Format implements fmt.Formatter: every verb prints a summary that shows
// no secret.
func (c Config) Format(f fmt.State, verb rune) { io.WriteString(f, c.redact()) }

func (c *Client) redact() string {
	if c == nil {
		return "resourceclient.Client(nil)"
	}
	return "resourceclient.Client{" + strings.TrimPrefix(c.cfg.redact(), "resourceclient.Config{")
}

// Format implements fmt.Formatter: every verb prints a summary that shows
// no secret.
func (c *Client) Format(f fmt.State, verb rune) { io.WriteString(f, c.redact()) }

package resourceclient

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// This file makes Config, Credentials and Client print without the
// client secret, the tokens of a session or a grant's material (S12,
// S16): a secret is shown as set or not, never its value, under every fmt
// verb, slog and JSON.

func (cr Credentials) redact() string { return "resourceclient.Credentials{" + cr.fields() + "}" }

// fields are the summary of cr's fields: the private key, its kid and
// NoDPoP only when set.
func (cr Credentials) fields() string {
	s := fmt.Sprintf("issuer=%s, client_id=%s, auth_method=%s, client_secret=%s",
		safetext.Clean(cr.Issuer, 200), safetext.Clean(cr.ClientID, 200), safetext.Clean(cr.AuthMethod, 40), safetext.Present(!cr.ClientSecret.IsZero()))
	if cr.PrivateKey != nil {
		s += ", private_key=" + safetext.Present(true) + ", key_id=" + safetext.Clean(cr.KeyID, 100)
	}
	if cr.NoDPoP {
		s += ", no_dpop=true"
	}
	return s
}

// Format implements fmt.Formatter: every verb prints a summary that shows
// no secret.
func (cr Credentials) Format(f fmt.State, verb rune) { io.WriteString(f, cr.redact()) }

// MarshalJSON encodes Format's summary as a JSON string: the private
// key's own fields are never encoded.
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

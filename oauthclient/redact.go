package oauthclient

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// This file makes the Client and its Config print without their secrets
// (S12, S16): the client secret and the private key are shown as set or
// not, never their value, under every fmt verb, slog and JSON.

func (c Config) redact() string {
	var b strings.Builder
	fmt.Fprintf(&b, "oauthclient.Config{issuer=%s, client_id=%s, auth_method=%s, client_secret=%s, private_key=%s, client_certificate=%s",
		safetext.Clean(c.Issuer, 200), safetext.Clean(c.ClientID, 200), safetext.Clean(c.AuthMethod, 40),
		safetext.Present(!c.ClientSecret.IsZero()), safetext.Present(c.PrivateKey != nil), safetext.Present(c.ClientCertificate != nil))
	if len(c.Scopes) > 0 {
		b.WriteString(", scopes=[" + safetext.Clean(strings.Join(c.Scopes, " "), 200) + "]")
	}
	if c.DPoP {
		b.WriteString(", dpop=true")
	}
	b.WriteString("}")
	return b.String()
}

// Format implements fmt.Formatter: every verb prints a summary that shows
// no secret or key.
func (c Config) Format(f fmt.State, verb rune) { io.WriteString(f, c.redact()) }

// MarshalJSON encodes Format's summary as a JSON string.
func (c Config) MarshalJSON() ([]byte, error) { return json.Marshal(c.redact()) }

func (c Client) redact() string {
	return fmt.Sprintf("oauthclient.Client{issuer=%s, client_id=%s, auth_method=%s, client_secret=%s, private_key=%s}",
		safetext.Clean(c.cfg.Issuer, 200), safetext.Clean(c.cfg.ClientID, 200), safetext.Clean(string(c.method), 40),
		safetext.Present(!c.cfg.ClientSecret.IsZero()), safetext.Present(c.cfg.PrivateKey != nil))
}

// Format implements fmt.Formatter: every verb prints a summary that shows
// no secret or key.
func (c Client) Format(f fmt.State, verb rune) { io.WriteString(f, c.redact()) }

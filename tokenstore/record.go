package tokenstore

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// Record is what a token source keeps in a Store for one login, as
// oauthclient's TokenSourceConfig.OnRecordChange sees it after each change:
// the refresh token and what it was granted for. The stored form (versioned
// JSON, one Store value) also holds the DPoP key the refresh token is bound
// to, sealed with it; the key is never handed out.
//
// Printing a Record with any fmt verb, slog or JSON shows no refresh token.
// A Record is a copy: changing it changes nothing stored.
type Record struct {
	// RefreshToken is the current refresh token.
	RefreshToken string
	// Subject is the sub of the login's ID token; "" for a login without
	// OpenID Connect.
	Subject string
	// Scopes are the scopes granted, as of the last token response.
	Scopes []string
	// Issuer and ClientID name the authorization server and client the
	// refresh token belongs to.
	Issuer, ClientID string
	// Generation counts the writes of this record by token sources (0 for
	// a fresh login).
	Generation uint64
	// Resources are the RFC 8707 resource indicators the login was granted
	// for; nil: none.
	Resources []string
	// DPoP reports whether the refresh token is bound to a DPoP key (RFC
	// 9449), kept in the stored record.
	DPoP bool
}

func (r Record) redact() string {
	var b strings.Builder
	b.WriteString("tokenstore.Record{iss=")
	b.WriteString(strconv.Quote(r.Issuer))
	b.WriteString(", client_id=")
	b.WriteString(strconv.Quote(r.ClientID))
	b.WriteString(", sub=")
	b.WriteString(strconv.Quote(r.Subject))
	b.WriteString(", scope=")
	b.WriteString(strconv.Quote(strings.Join(r.Scopes, " ")))
	b.WriteString(", gen=")
	b.WriteString(strconv.FormatUint(r.Generation, 10))
	if len(r.Resources) > 0 {
		b.WriteString(", resource=")
		b.WriteString(strconv.Quote(strings.Join(r.Resources, " ")))
	}
	if r.DPoP {
		b.WriteString(", dpop_key=" + safetext.Redacted)
	}
	b.WriteString(", refresh_token=" + safetext.Redacted + "}")
	return b.String()
}

// Format implements fmt.Formatter; no verb shows the refresh token.
func (r Record) Format(f fmt.State, _ rune) { io.WriteString(f, r.redact()) }

// MarshalJSON implements json.Marshaler; it never shows the refresh token.
func (r Record) MarshalJSON() ([]byte, error) { return json.Marshal(r.redact()) }

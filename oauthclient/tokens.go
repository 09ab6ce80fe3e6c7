package oauthclient

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/dpop"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"github.com/oauthsafe/oauthsafe/validate"
	"golang.org/x/oauth2"
)

// Tokens is the result of a completed login: the access token, the
// refresh token if one was issued, the verified ID token and the granted
// scopes. Printing Tokens with any fmt verb, slog or JSON shows no token
// (S12). It is immutable and safe for concurrent use.
type Tokens struct {
	tok     *oauth2.Token
	idToken *validate.IDToken
	rawID   string
	scopes  []string
	dpop    *dpop.Key // the key the flow proved (RFC 9449), kept with the refresh token; nil without DPoP
	// resources are the RFC 8707 resource indicators the flow was
	// started with; they go into the record, so a Source resumed from
	// the store refreshes for them.
	resources []string
}

// Scopes returns the granted scopes.
func (t *Tokens) Scopes() []string {
	if t == nil {
		return nil
	}
	return slices.Clone(t.scopes)
}

// IDToken returns the verified ID token, or nil for a non-OIDC flow.
func (t *Tokens) IDToken() *validate.IDToken {
	if t == nil {
		return nil
	}
	return t.idToken
}

// RawIDToken returns the ID token as received, for id_token_hint at logout.
func (t *Tokens) RawIDToken() string {
	if t == nil {
		return ""
	}
	return t.rawID
}

// Subject returns the ID token's sub, or "" for a non-OIDC flow.
func (t *Tokens) Subject() string {
	if t == nil {
		return ""
	}
	return t.subject()
}

func (t Tokens) subject() string {
	if t.idToken == nil {
		return ""
	}
	return t.idToken.Subject
}

// OAuth2Token returns a copy of the tokens as an *oauth2.Token, for use
// with x/oauth2 APIs and to read them: AccessToken (keep it in memory
// only); RefreshToken, "" when none was issued (store it only in a
// tokenstore.Store); Expiry, never the zero time (a missing expires_in
// counts as 5 minutes, a longer one is capped at 24 hours); TokenType,
// "Bearer", or "DPoP" for tokens bound to the flow's DPoP key (RFC 9449),
// which the API transport and the token source use by themselves. Unlike
// Tokens, an *oauth2.Token prints its tokens under %+v: do not log it.
//
// For DPoP-bound tokens the copy carries the key (printed redacted), so
// that the apiclient transport sends proofs with it.
func (t *Tokens) OAuth2Token() *oauth2.Token {
	c := *t.token()
	return &c
}

func (t Tokens) redact() string {
	if t.tok == nil {
		return "oauthclient.Tokens{}"
	}
	var b strings.Builder
	b.WriteString("oauthclient.Tokens{type=")
	b.WriteString(t.tok.TokenType)
	b.WriteString(", expiry=")
	b.WriteString(t.tok.Expiry.UTC().Format(time.RFC3339))
	b.WriteString(", scopes=[")
	b.WriteString(strings.Join(t.scopes, " "))
	b.WriteString("], access_token=" + safetext.Redacted)
	if t.dpop != nil {
		b.WriteString(", dpop_jkt=" + t.dpop.JKT())
	}
	if t.tok.RefreshToken != "" {
		b.WriteString(", refresh_token=" + safetext.Redacted)
	}
	if t.rawID != "" {
		b.WriteString(", id_token=" + safetext.Redacted + ", sub=" + t.subject())
	}
	b.WriteString("}")
	return b.String()
}

// Format prints a summary (type, expiry, scopes, DPoP key thumbprint,
// subject) with every token redacted, under every fmt verb; slog's text
// handler prints the same. encoding/json, and so slog's JSON handler, see
// no field: Tokens encodes as {}.
func (t Tokens) Format(f fmt.State, verb rune) { io.WriteString(f, t.redact()) }

// zeroToken stands in for the token of a zero or nil Tokens, so that no
// accessor panics.
var zeroToken oauth2.Token

// token returns the held token, or an empty one for a zero or nil Tokens.
func (t *Tokens) token() *oauth2.Token {
	if t == nil || t.tok == nil {
		return &zeroToken
	}
	return t.tok
}

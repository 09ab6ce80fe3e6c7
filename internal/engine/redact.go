package engine

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// This file makes the values a FetchFunc receives and returns print
// without their secrets (S12): the rotated refresh token, the DPoP key and
// the access token are shown as present or not, never their value.

func (r *Refresh) redact() string {
	if r == nil {
		return "tokenstore.Refresh(nil)"
	}
	r.mu.Lock()
	rotated, key := r.rotated != "", !r.key.IsZero()
	r.mu.Unlock()
	var b strings.Builder
	b.WriteString("tokenstore.Refresh{record=")
	if r.Record != nil {
		b.WriteString(r.Record.redact())
	} else {
		b.WriteString("none")
	}
	if rotated {
		b.WriteString(", rotated=" + safetext.Redacted)
	}
	if key {
		b.WriteString(", dpop_key=" + safetext.Redacted)
	}
	b.WriteString("}")
	return b.String()
}

// Format implements fmt.Formatter; no verb shows a refresh token or a key.
func (r *Refresh) Format(f fmt.State, verb rune) { io.WriteString(f, r.redact()) }

// MarshalJSON implements json.Marshaler; it never shows a refresh token or a key.
func (r *Refresh) MarshalJSON() ([]byte, error) { return json.Marshal(r.redact()) }

func (r Result) redact() string {
	var b strings.Builder
	b.WriteString("tokenstore.Result{")
	if r.Token != nil {
		b.WriteString("type=" + safetext.Clean(r.Token.TokenType, 32))
		if !r.Token.Expiry.IsZero() {
			b.WriteString(", expiry=" + r.Token.Expiry.UTC().Format(time.RFC3339))
		}
		b.WriteString(", access_token=" + safetext.Redacted)
		if r.Token.RefreshToken != "" {
			b.WriteString(", refresh_token=" + safetext.Redacted)
		}
	} else {
		b.WriteString("token=none")
	}
	if r.Scopes != nil {
		b.WriteString(", scopes=[" + safetext.Clean(strings.Join(r.Scopes, " "), 200) + "]")
	}
	b.WriteString("}")
	return b.String()
}

// Format implements fmt.Formatter; no verb shows a token.
func (r Result) Format(f fmt.State, verb rune) { io.WriteString(f, r.redact()) }

// MarshalJSON implements json.Marshaler; it never shows a token.
func (r Result) MarshalJSON() ([]byte, error) { return json.Marshal(r.redact()) }

// redacted writes name{redacted} for every fmt verb, so %v, %+v, %#v, %q
// and %s never show what a type holds.
func redacted(f fmt.State, name string) {
	io.WriteString(f, name+"{"+safetext.Redacted+"}")
}

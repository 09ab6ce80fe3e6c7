package tokenexchange

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// This file makes Options and IDJAG print without the tokens their
// sources hold (S12): a subject or actor token source is shown as set or
// not, never what it gives, under every fmt verb, slog and JSON.

func list(v []string) string { return safetext.Clean(strings.Join(v, " "), 200) }

func (o Options) redact() string {
	return fmt.Sprintf("tokenexchange.Options{subject_token=%s, subject_token_type=%s, actor_token=%s, actor_token_type=%s, audience=[%s], resource=[%s], scopes=[%s], requested_token_type=%s, no_dpop=%t}",
		safetext.Present(o.SubjectToken != nil), safetext.Clean(o.SubjectTokenType, 100), safetext.Present(o.ActorToken != nil), safetext.Clean(o.ActorTokenType, 100),
		list(o.Audience), list(o.Resource), list(o.Scopes), safetext.Clean(o.RequestedTokenType, 100), o.NoDPoP)
}

// String implements fmt.Stringer: the types and parameters, never a token.
func (o Options) String() string { return o.redact() }

// GoString implements fmt.GoStringer as String does.
func (o Options) GoString() string { return o.redact() }

// Format prints String's summary under every fmt verb.
func (o Options) Format(f fmt.State, verb rune) { io.WriteString(f, o.redact()) }

// LogValue implements slog.LogValuer with String's summary.
func (o Options) LogValue() slog.Value { return slog.StringValue(o.redact()) }

// MarshalJSON encodes String's summary as a JSON string.
func (o Options) MarshalJSON() ([]byte, error) { return json.Marshal(o.redact()) }

func (j IDJAG) redact() string {
	idp := "none"
	if j.IdP != nil {
		idp = j.IdP.String()
	}
	return fmt.Sprintf("tokenexchange.IDJAG{idp=%s, subject_token=%s, subject_token_type=%s, resource=%s, scopes=[%s]}",
		idp, safetext.Present(j.SubjectToken != nil), safetext.Clean(j.SubjectTokenType, 100), safetext.Clean(j.Resource, 200), list(j.Scopes))
}

// String implements fmt.Stringer: the identity provider's client and the
// parameters, never the subject token.
func (j IDJAG) String() string { return j.redact() }

// GoString implements fmt.GoStringer as String does.
func (j IDJAG) GoString() string { return j.redact() }

// Format prints String's summary under every fmt verb.
func (j IDJAG) Format(f fmt.State, verb rune) { io.WriteString(f, j.redact()) }

// LogValue implements slog.LogValuer with String's summary.
func (j IDJAG) LogValue() slog.Value { return slog.StringValue(j.redact()) }

// MarshalJSON encodes String's summary as a JSON string.
func (j IDJAG) MarshalJSON() ([]byte, error) { return json.Marshal(j.redact()) }

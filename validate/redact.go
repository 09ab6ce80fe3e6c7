package validate

import (
	"fmt"
	"io"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// Format prints a summary under every fmt verb (and so in slog's text
// output) that says which values are set and never shows the nonce, the
// access token or the code (S12). JSON shows none of them (their fields
// are tagged "-").
func (c IDTokenCheck) Format(f fmt.State, verb rune) {
	set := func(s string) string {
		if s == "" {
			return "none"
		}
		return safetext.Redacted
	}
	io.WriteString(f, "validate.IDTokenCheck{nonce="+set(c.Nonce)+", access_token="+set(c.AccessToken)+", code="+set(c.Code)+"}")
}

package callback

import (
	"crypto/rand"
	"net/http"
	"testing"

	"github.com/oauthsafe/oauthsafe/oauthclient"
)

func mustKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k) // crypto/rand: never fails
	return k
}

// logins is an OnLogin for handlers that must never reach it with tokens
// that were not verified.
type logins struct{}

func (l *logins) onLogin(w http.ResponseWriter, r *http.Request, t *oauthclient.Tokens, returnTo string) error {
	if t == nil || t.OAuth2Token().AccessToken == "" || t.IDToken() == nil {
		panic("OnLogin without verified tokens")
	}
	return nil
}

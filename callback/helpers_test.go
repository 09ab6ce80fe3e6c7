package callback

import (
	"net/http"
	"sync"
	"testing"

	"github.com/oauthsafe/oauthsafe/oauthclient"
)

func mustKey(t testing.TB) []byte {
	t.Helper()
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// logins records what OnLogin and OnError saw.
type logins struct {
	mu       sync.Mutex
	subjects []string
	returnTo []string
	errs     []error
}

func (l *logins) onLogin(w http.ResponseWriter, r *http.Request, t *oauthclient.Tokens, returnTo string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t == nil || t.AccessToken() == "" || t.IDToken() == nil {
		panic("OnLogin without verified tokens")
	}
	l.subjects = append(l.subjects, t.Subject())
	l.returnTo = append(l.returnTo, returnTo)
	http.SetCookie(w, &http.Cookie{Name: "session", Value: "s-" + t.Subject(), Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	return nil
}

func (l *logins) onError(r *http.Request, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

func (l *logins) lastErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) == 0 {
		return nil
	}
	return l.errs[len(l.errs)-1]
}

func (l *logins) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.subjects)
}

package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"unicode"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// session is what a signed-in browser's cookie stands for: the user's store
// key in the vault and the subject to greet. No token.
type session struct {
	key, subject string
}

// sessions maps random session ids to sessions, in memory. It is shared by
// the app instances of the demo as a fleet's session store would be.
type sessions struct {
	mu sync.Mutex
	m  map[string]session
}

const sessionCookie = "__Host-session"

func (s *sessions) get(r *http.Request) (string, session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", session{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[c.Value]
	return c.Value, v, ok
}

func (s *sessions) create(w http.ResponseWriter, v session) {
	id := rand.Text()
	s.mu.Lock()
	s.m[id] = v
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

func (s *sessions) delete(w http.ResponseWriter, id string) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// appConfig is what newApp needs.
type appConfig struct {
	Client    *oauthclient.Client
	CookieKey []byte           // seals the pending-flow cookies
	Vault     tokenstore.Store // the users' records, sealed
	APIURL    string           // "" means no API call
	APIRoots  *x509.CertPool   // nil means the system roots
	Sessions  *sessions        // nil means a new, empty table
	Log       io.Writer        // refused logins and API failures
}

// webApp is the application: its handlers, and the per-user pool that
// Drain settles on shutdown.
type webApp struct {
	http.Handler
	users *oauthclient.UserPool
}

// Drain finishes the refreshes in flight and writes the rotations whose
// write failed; call it after http.Server.Shutdown, before exiting.
func (a *webApp) Drain(ctx context.Context) error { return a.users.Drain(ctx) }

// newApp wires the handlers: /login, /callback, / and POST /logout.
func newApp(cfg appConfig) (*webApp, error) {
	s := cfg.Sessions
	if s == nil {
		s = &sessions{m: map[string]session{}}
	}
	logger := log.New(cfg.Log, "webapp: ", log.LstdFlags)
	// The per-user pool: each user's token engine, resumed from the vault
	// on first use, at most 10,000 kept in memory.
	users, err := cfg.Client.UserPool(oauthclient.TokenSourceConfig{Store: cfg.Vault})
	if err != nil {
		return nil, err
	}
	// One API transport for every user: its connections are shared, and
	// each request gets a client for its user's token source.
	var api *apiclient.Transport
	if cfg.APIURL != "" {
		u, err := url.Parse(cfg.APIURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, errors.New("-api must be an https URL")
		}
		api, err = apiclient.NewTransport(apiclient.Config{AllowedOrigins: []string{"https://" + u.Host}, HTTP: strictnet.Config{RootCAs: cfg.APIRoots}})
		if err != nil {
			return nil, err
		}
	}
	cc := cfg.Client.Config()
	h, err := callback.New(callback.Config{
		Client: cfg.Client,
		Keys:   [][]byte{cfg.CookieKey},
		OnLogin: func(w http.ResponseWriter, r *http.Request, t *oauthclient.Tokens, returnTo string) error {
			if demoTokensSeen != nil {
				demoTokensSeen(t)
			}
			// The record goes to the vault, sealed; the engine, holding
			// the login's access token, joins the pool.
			key := tokenstore.Key(cc.Issuer, cc.ClientID, t.Subject())
			src, err := cfg.Client.TokenSource(r.Context(), oauthclient.TokenSourceConfig{Store: cfg.Vault, Key: key}, t)
			if err != nil {
				return err
			}
			users.Add(key, src)
			s.create(w, session{key: key, subject: t.Subject()})
			return nil
		},
		OnError: func(r *http.Request, err error) { logger.Printf("login refused: %v", err) },
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/login", h.Login())
	mux.Handle("/callback", h)
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if id, v, ok := s.get(r); ok {
			// Revoke at the server and delete the record, even if the
			// revocation fails (then the error says so).
			if err := users.End(r.Context(), v.key); err != nil {
				logger.Printf("logout: %v", err)
			}
			s.delete(w, id)
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		id, v, ok := s.get(r)
		if !ok {
			http.Redirect(w, r, "/login?return_to=/", http.StatusSeeOther)
			return
		}
		// Plain text that browsers must not sniff as HTML; server-sent
		// text is printed without control or format characters.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(w, "Hello, %s\n", printable(v.subject))
		if cfg.APIURL == "" {
			return
		}
		body, err := callAPI(r, users, v.key, cfg.APIURL, api)
		if errors.Is(err, tokenstore.ErrLoginRequired) {
			// Refresh token revoked or expired: sign in again.
			s.delete(w, id)
			fmt.Fprintln(w, "Your session with the API ended; sign in again at /login.")
			return
		}
		if err != nil {
			logger.Printf("API call: %v", err)
			fmt.Fprintln(w, "The API call failed; try again later.")
			return
		}
		fmt.Fprintf(w, "API on your behalf: %s\n", printable(body))
	})
	return &webApp{Handler: mux, users: users}, nil
}

// callAPI calls the API for the user with store key key: the pooled engine
// supplies the access token (refreshing it if needed), and the API client
// sends it only to the API's origin, only in the Authorization header.
func callAPI(r *http.Request, users *oauthclient.UserPool, key, apiURL string, api *apiclient.Transport) (string, error) {
	src, err := users.Source(r.Context(), key)
	if err != nil {
		return "", err
	}
	httpc, err := api.Client(src)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, apiURL, nil)
	if err != nil {
		return "", err
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", err
	}
	return resp.Status + " " + strings.TrimSpace(string(b)), nil
}

// printable keeps the graphic characters of s (no controls, no bidi
// overrides), at most 200 bytes of them.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsGraphic(r) {
			return r
		}
		return -1
	}, s)
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}

// demoTokensSeen, when set (by tests), receives the tokens of each login,
// so that a test can check none of them was printed or stored in clear.
var demoTokensSeen func(*oauthclient.Tokens)

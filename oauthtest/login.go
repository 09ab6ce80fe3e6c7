package oauthtest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// The users. Every user has the password Password.
const (
	// UserAlice is the username of the first user.
	UserAlice = "alice"
	// UserBob is the username of the second user.
	UserBob = "bob"
	// Password is the password of every user.
	Password = "correct-horse-battery-staple"
)

// User describes one account of the server. It holds no secret; a User
// value is immutable and safe to share.
type User struct {
	Username string // login name and preferred_username
	Subject  string // the "sub" claim
	Email    string // the email claim (always verified)
	Name     string // the name claim
}

func newUsers() map[string]User {
	return map[string]User{
		UserAlice: {Username: UserAlice, Subject: "sub-alice-7f3a", Email: "alice@example.test", Name: "Alice Example"},
		UserBob:   {Username: UserBob, Subject: "sub-bob-21c9", Email: "bob@example.test", Name: "Bob Example"},
	}
}

// Users returns the accounts of the server, in a fixed order. It is safe
// for concurrent use.
func Users() []User {
	u := newUsers()
	return []User{u[UserAlice], u[UserBob]}
}

// Subject returns the "sub" claim of username, or "" for an unknown user.
// It is safe for concurrent use.
func Subject(username string) string { return newUsers()[username].Subject }

// AuthorizeError reports that the authorization request did not end in a
// code. When the server redirected to the client with an error, Code and
// Description come from that redirect; when it refused to redirect (for
// example an unknown client or redirect URI), Code is empty and Status is
// the HTTP status of its answer. It is a plain value, safe to share; it never
// holds a code or token.
type AuthorizeError struct {
	Code        string // the error parameter, e.g. "invalid_request"
	Description string // error_description, or the start of the error page
	Status      int    // HTTP status when the server did not redirect
}

// Error describes the refusal.
func (e *AuthorizeError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("oauthtest: authorization refused: %s: %s", e.Code, e.Description)
	}
	return fmt.Sprintf("oauthtest: authorization refused with status %d: %s", e.Status, e.Description)
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html><head><title>oauthtest login</title></head><body>
<form method="post" action="` + loginPath + `">
<input type="hidden" name="id" value="{{.ID}}">
<label>Username <input name="username"></label>
<label>Password <input name="password" type="password"></label>
<button type="submit">Sign in</button>
{{if .Error}}<p>{{.Error}}</p>{{end}}
</form></body></html>`))

var devicePage = template.Must(template.New("device").Parse(`<!doctype html>
<html><head><title>oauthtest device</title></head><body>
<form method="post" action="` + devicePath + `">
<label>Code <input name="user_code" value="{{.UserCode}}"></label>
<label>Username <input name="username"></label>
<label>Password <input name="password" type="password"></label>
<button name="action" value="allow">Allow</button>
<button name="action" value="deny">Deny</button>
{{if .Error}}<p>{{.Error}}</p>{{end}}
</form></body></html>`))

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// No form-action directive: Chromium applies it to the redirects that
	// follow the form's POST, which would block the final redirect to the
	// client's redirect URI at another origin.
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
}

// registerUI adds the login and device pages, the browser part of the
// server that the op package leaves to the application.
func (s *Server) registerUI(mux *http.ServeMux, p *op.Provider) {
	callbackURL := op.AuthCallbackURL(p)
	issuerCtx := op.NewIssuerInterceptor(p.IssuerFromRequest)

	mux.HandleFunc("GET "+loginPath, func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		_ = loginPage.Execute(w, map[string]string{"ID": r.URL.Query().Get("authRequestID")})
	})
	mux.Handle("POST "+loginPath, issuerCtx.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		id := r.PostForm.Get("id")
		if err := s.storage.checkLogin(id, r.PostForm.Get("username"), r.PostForm.Get("password")); err != nil {
			noStore(w)
			w.WriteHeader(http.StatusUnauthorized)
			_ = loginPage.Execute(w, map[string]string{"ID": id, "Error": err.Error()})
			return
		}
		http.Redirect(w, r, callbackURL(r.Context(), id), http.StatusFound)
	}))
	mux.HandleFunc("GET "+devicePath, func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		_ = devicePage.Execute(w, map[string]string{"UserCode": r.URL.Query().Get("user_code")})
	})
	mux.HandleFunc("POST "+devicePath, func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		f := r.PostForm
		err := s.storage.completeDevice(f.Get("user_code"), f.Get("username"), f.Get("password"), f.Get("action") == "allow")
		noStore(w)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_ = devicePage.Execute(w, map[string]string{"UserCode": f.Get("user_code"), "Error": err.Error()})
			return
		}
		_, _ = io.WriteString(w, "<!doctype html><p>Done. You can return to your device.</p>")
	})
}

// newBrowser returns the client that Login and ApproveDevice use: it trusts
// only the server's CA and does not follow redirects.
func (s *Server) newBrowser() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: s.certs.caPool, MinVersion: tls.VersionTLS12},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Login plays the browser for an authorization request: it requests
// authURL (which must be this server's authorization endpoint), follows
// the redirects within the server, signs in as username with Password, and
// returns the URL the server finally redirects to, the client's redirect
// URI with code, state and iss, without requesting it.
//
// If the server redirects to the client with an error, Login returns that
// URL together with an *AuthorizeError; if it refuses without redirecting,
// it returns "" and an *AuthorizeError. An unknown username is an error.
func (s *Server) Login(ctx context.Context, authURL, username string) (string, error) {
	return s.login(ctx, authURL, username, Password)
}

// LoginWithPassword is Login with an explicit password, for tests of a
// failed sign-in (the result is then an error, and no code is issued).
func (s *Server) LoginWithPassword(ctx context.Context, authURL, username, password string) (string, error) {
	return s.login(ctx, authURL, username, password)
}

func (s *Server) login(ctx context.Context, authURL, username, password string) (string, error) {
	if !strings.HasPrefix(authURL, s.AuthURL+"?") {
		return "", errors.New("oauthtest: Login: not an authorization URL of this server")
	}
	issuer, err := url.Parse(s.Issuer)
	if err != nil {
		return "", fmt.Errorf("oauthtest: Login: %w", err)
	}
	next, method, form := authURL, http.MethodGet, url.Values(nil)
	for range 10 {
		resp, err := s.do(ctx, method, next, form)
		if err != nil {
			return "", err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode < 300 || resp.StatusCode >= 400 {
			return "", &AuthorizeError{Status: resp.StatusCode, Description: strings.TrimSpace(string(body))}
		}
		loc, err := resp.Location()
		if err != nil {
			return "", fmt.Errorf("oauthtest: Login: redirect without Location: %w", err)
		}
		if loc.Scheme != issuer.Scheme || loc.Host != issuer.Host {
			q := loc.Query()
			if code := q.Get("error"); code != "" {
				return loc.String(), &AuthorizeError{Code: code, Description: q.Get("error_description")}
			}
			return loc.String(), nil
		}
		if loc.Path == loginPath {
			if _, ok := newUsers()[username]; !ok {
				return "", fmt.Errorf("oauthtest: Login: unknown user %q", username)
			}
			next, method = s.Issuer+loginPath, http.MethodPost
			form = url.Values{"id": {loc.Query().Get("authRequestID")}, "username": {username}, "password": {password}}
			// Load the page first, as a browser would.
			if r, err := s.do(ctx, http.MethodGet, loc.String(), nil); err == nil {
				_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<16))
				r.Body.Close()
			}
			continue
		}
		next, method, form = loc.String(), http.MethodGet, nil
	}
	return "", errors.New("oauthtest: Login: too many redirects")
}

func (s *Server) do(ctx context.Context, method, target string, form url.Values) (*http.Response, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, fmt.Errorf("oauthtest: %w", err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := s.browser.Do(req)
	if err != nil {
		return nil, fmt.Errorf("oauthtest: %s %s: %w", method, req.URL.Path, err)
	}
	return resp, nil
}

// ApproveDevice signs in as username on the device verification page and
// approves the pending device authorization with userCode.
func (s *Server) ApproveDevice(ctx context.Context, userCode, username string) error {
	return s.device(ctx, userCode, username, "allow")
}

// DenyDevice signs in as username on the device verification page and
// denies the pending device authorization with userCode.
func (s *Server) DenyDevice(ctx context.Context, userCode, username string) error {
	return s.device(ctx, userCode, username, "deny")
}

func (s *Server) device(ctx context.Context, userCode, username, action string) error {
	form := url.Values{"user_code": {userCode}, "username": {username}, "password": {Password}, "action": {action}}
	resp, err := s.do(ctx, http.MethodPost, s.DeviceVerificationURL, form)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("oauthtest: device %s refused with status %d", action, resp.StatusCode)
	}
	return nil
}

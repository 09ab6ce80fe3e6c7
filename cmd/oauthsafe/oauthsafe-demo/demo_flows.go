package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/validate"
)

// demoBrowser is the demo's stand-in for a user agent: a cookie jar, and no
// automatic redirects so each hop can be inspected.

// pendingCookiePrefix starts the names of the demo's pending-login
// cookies (callback.Config.CookiePrefix; it is also the default).
const pendingCookiePrefix = "__Secure-oauthsafe-"

func demoBrowser(roots *x509.CertPool) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:           jar,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
}

func (d *demo) get(ctx context.Context, c *http.Client, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp, nil
}

// webSection runs the web application flow through callback.Login and
// callback.Handler, with an HTTP client playing the browser.
func (d *demo) webSection(ctx context.Context, srv *oauthtest.Server) error {
	d.section("Web application: callback handler with sealed per-flow cookies")
	mux := http.NewServeMux()
	app := httptest.NewTLSServer(mux)
	defer app.Close()
	subject, err := webHandler(ctx, srv, app.URL, mux)
	if err != nil {
		return err
	}
	roots := srv.RootCAs()
	roots.AddCert(app.Certificate())
	b := demoBrowser(roots)
	authURL, ok, err := d.webLoginStart(ctx, b, app.URL)
	if !ok || err != nil {
		return err
	}
	cb, err := srv.Login(ctx, authURL, "alice")
	if err != nil {
		return err
	}
	if err := d.webForgedCallback(ctx, srv, b, cb); err != nil {
		return err
	}
	if err := d.webCallback(ctx, b, cb, subject); err != nil {
		return err
	}
	return d.webReplay(ctx, srv, b, app.URL, cb)
}

// webHandler serves the web application's /login and /callback on mux
// (callback.Handler, its own client); *subject is the sub OnLogin got.
func webHandler(ctx context.Context, srv *oauthtest.Server, appURL string, mux *http.ServeMux) (subject *string, err error) {
	srv.AddRedirectURI(appURL + "/callback")
	secret, err := secret.FromReader(strings.NewReader(oauthtest.WebSecret))
	if err != nil {
		return nil, err
	}
	c, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer: srv.Issuer, ClientID: oauthtest.ClientWeb, ClientSecret: secret,
		RedirectURL: appURL + "/callback", Scopes: []string{"openid", "profile"},
		HTTP: strictnet.Config{RootCAs: srv.RootCAs()},
	})
	if err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	rand.Read(key) // crypto/rand: never fails
	subject = new(string)
	h, err := callback.New(callback.Config{Client: c, Keys: [][]byte{key}, LandingURL: "/home",
		OnLogin: func(w http.ResponseWriter, r *http.Request, t *oauthclient.Tokens, returnTo string) error {
			*subject = t.Subject()
			return nil
		}})
	if err != nil {
		return nil, err
	}
	mux.Handle("/login", h.Login())
	mux.Handle("/callback", h)
	return subject, nil
}

// webLoginStart opens /login in the browser b: a 303 to the server with
// the flow sealed in its own cookie. ok is false when it was not.
func (d *demo) webLoginStart(ctx context.Context, b *http.Client, appURL string) (authURL string, ok bool, err error) {
	resp, err := d.get(ctx, b, appURL+"/login")
	if err != nil {
		return "", false, err
	}
	authURL = resp.Header.Get("Location")
	pending := ""
	for _, ck := range resp.Cookies() {
		if strings.HasPrefix(ck.Name, pendingCookiePrefix) {
			pending = fmt.Sprintf("%s (HttpOnly=%v, Secure=%v, SameSite=Lax=%v, Path=%s)", ck.Name[:len(pendingCookiePrefix)+8]+"…", ck.HttpOnly, ck.Secure, ck.SameSite == http.SameSiteLaxMode, ck.Path)
		}
	}
	if resp.StatusCode != http.StatusSeeOther || pending == "" {
		d.fail("/login did not answer 303 with a sealed pending cookie (status %d)", resp.StatusCode)
		return "", false, nil
	}
	d.ok("/login: 303 to the server; the flow is sealed (AES-GCM) in its own cookie %s", pending)
	return authURL, true, nil
}

// webForgedCallback presents the real callback cb with an attacker's
// state: an error page, no token request.
func (d *demo) webForgedCallback(ctx context.Context, srv *oauthtest.Server, b *http.Client, cb string) error {
	// A forged callback first: an attacker's state, as in login CSRF.
	forged, _ := url.Parse(cb)
	q := forged.Query()
	q.Set("state", "attacker")
	forged.RawQuery = q.Encode()
	before := srv.TokenRequests("authorization_code")
	resp, err := d.get(ctx, b, forged.String())
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 && srv.TokenRequests("authorization_code") == before {
		d.blocked("callback with a forged state: HTTP %d error page, no token request, the real flow untouched", resp.StatusCode)
	} else {
		d.fail("forged callback: HTTP %d", resp.StatusCode)
	}
	return nil
}

// webCallback follows the real callback cb: every check passes, OnLogin
// gets the subject, and the answer redirects with the protective headers.
func (d *demo) webCallback(ctx context.Context, b *http.Client, cb string, subject *string) error {
	resp, err := d.get(ctx, b, cb)
	if err != nil {
		return err
	}
	loc := resp.Header.Get("Location")
	clean := !strings.Contains(loc, "code=") && !strings.Contains(loc, "state=")
	hdr := resp.Header
	headersOK := hdr.Get("Cache-Control") == "no-store" && hdr.Get("Referrer-Policy") == "no-referrer" &&
		hdr.Get("Content-Security-Policy") == "default-src 'none'" && hdr.Get("X-Frame-Options") == "DENY" &&
		hdr.Get("X-Content-Type-Options") == "nosniff" && hdr.Get("Pragma") == "no-cache"
	if resp.StatusCode == http.StatusSeeOther && clean && headersOK && *subject == oauthtest.Subject("alice") {
		d.ok("/callback: state, error, iss, code exchange and ID token checked; OnLogin got sub=%s", *subject)
		d.ok("answered 303 See Other to %q (no code, no state) with no-store, no-referrer, CSP default-src 'none', DENY, nosniff", loc)
	} else {
		d.fail("/callback answered %d to %q (headers ok: %v)", resp.StatusCode, loc, headersOK)
	}
	return nil
}

// webReplay replays the callback cb: its pending cookie is gone, so it
// is refused with no token request.
func (d *demo) webReplay(ctx context.Context, srv *oauthtest.Server, b *http.Client, appBase, cb string) error {
	before := srv.TokenRequests("authorization_code")
	resp, err := d.get(ctx, b, cb)
	if err != nil {
		return err
	}
	appURL, _ := url.Parse(appBase + "/callback")
	for _, ck := range b.Jar.Cookies(appURL) {
		if strings.HasPrefix(ck.Name, pendingCookiePrefix) {
			d.fail("the pending cookie is still in the browser")
		}
	}
	if resp.StatusCode >= 400 && srv.TokenRequests("authorization_code") == before {
		d.blocked("replay of the same callback URL: HTTP %d, the pending cookie is gone, no token request", resp.StatusCode)
	} else {
		d.fail("replayed callback: HTTP %d", resp.StatusCode)
	}
	return nil
}

// loopbackSection runs the desktop flow: a loopback receiver on 127.0.0.1,
// the "browser" driven programmatically, and the refresh lifecycle.
func (d *demo) loopbackSection(ctx context.Context, srv *oauthtest.Server) error {
	d.section("Desktop login: loopback receiver on 127.0.0.1")
	c, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer: srv.Issuer, ClientID: oauthtest.ClientNative, Scopes: []string{"openid", "offline_access", oauthtest.ScopeAPIRead},
		RedirectURL: oauthtest.NativeRedirectURI, HTTP: strictnet.Config{RootCAs: srv.RootCAs()},
	})
	if err != nil {
		return err
	}
	plain := &http.Client{Timeout: 10 * time.Second}
	var forgedStatus, rootStatus atomic.Int32
	var redirect string
	lb := &callback.Loopback{Client: c, Out: io.Discard, Timeout: time.Minute,
		Open: func(authURL string) error {
			u, err := url.Parse(authURL)
			if err != nil {
				return err
			}
			redirect = u.Query().Get("redirect_uri")
			go func() {
				base := strings.TrimSuffix(redirect, "/callback")
				if r, err := d.get(ctx, plain, base+"/"); err == nil {
					rootStatus.Store(int32(r.StatusCode))
				}
				if r, err := d.get(ctx, plain, redirect+"?code=stolen&state=attacker&iss="+url.QueryEscape(srv.Issuer)); err == nil {
					forgedStatus.Store(int32(r.StatusCode))
				}
				cb, err := srv.Login(ctx, authURL, "bob")
				if err == nil {
					plain.Get(cb) // follows the 303 to the result page
				}
			}()
			return nil
		}}
	toks, err := lb.Login(ctx)
	if err != nil {
		return fmt.Errorf("loopback login: %w", err)
	}
	d.ok("receiver bound to %s (an IP literal, never localhost), path /callback", strings.TrimSuffix(strings.TrimPrefix(redirect, "http://"), "/callback"))
	if rootStatus.Load() == http.StatusNotFound {
		d.blocked("GET / on the receiver: 404, nothing revealed")
	} else {
		d.fail("GET / on the receiver answered %d", rootStatus.Load())
	}
	if st := forgedStatus.Load(); st >= 400 {
		d.blocked("callback with a forged state: HTTP %d error page, no success page; the receiver kept waiting", st)
	} else {
		d.fail("forged loopback callback answered %d", st)
	}
	d.ok("the real callback passed every check; the browser saw the result page only then; sub=%s", toks.Subject())
	return d.loopbackRefresh(ctx, srv, c, toks)
}

// loopbackRefresh refreshes the desktop login as one store transaction:
// the rotated refresh token is stored before the access token is used.
func (d *demo) loopbackRefresh(ctx context.Context, srv *oauthtest.Server, c *oauthclient.Client, toks *oauthclient.Tokens) error {
	store := &tokenstore.Memory{} // the CLI uses keyring.Store: the OS keyring
	key := tokenstore.Key(srv.Issuer, oauthtest.ClientNative, toks.Subject())
	src, err := c.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: store, Key: key}, toks)
	if err != nil {
		return err
	}
	src.Invalidate(toks.OAuth2Token()) // as if the access token had expired
	if _, err := src.Token(); err != nil {
		return fmt.Errorf("refresh: %w", err)
	}
	rec, err := engine.LoadRecord(ctx, store, key)
	if err == nil && rec.RefreshToken != toks.OAuth2Token().RefreshToken {
		d.ok("refresh as one store transaction: the rotated refresh token was stored before the new access token was released")
	} else {
		d.fail("rotated refresh token not stored (%v)", err)
	}
	return nil
}

// algNone presents an unsigned ID token, as an attacker in the middle would.
func (d *demo) algNone(ctx context.Context, c *oauthclient.Client) {
	md := c.Metadata()
	keys, err := validate.NewJWKS(validate.JWKSConfig{URL: md.JWKSURI, HTTPClient: c.HTTPClient()})
	if err != nil {
		d.fail("key set: %v", err)
		return
	}
	v, err := validate.NewIDTokenVerifier(validate.IDTokenConfig{
		Issuer: md.Issuer, ClientID: oauthtest.ClientWeb, Algorithms: md.IDTokenSigningAlgValuesSupported, KeySet: keys,
	})
	if err != nil {
		d.fail("verifier: %v", err)
		return
	}
	enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	now := time.Now().Unix()
	forged := enc(map[string]string{"alg": "none", "typ": "JWT"}) + "." +
		enc(map[string]any{"iss": md.Issuer, "aud": oauthtest.ClientWeb, "sub": "admin", "iat": now, "exp": now + 600, "nonce": "n"}) + "."
	_, err = v.Verify(ctx, forged, validate.IDTokenCheck{Nonce: "n"})
	if errors.Is(err, validate.ErrInvalidToken) {
		d.blocked("unsigned ID token (alg:none) claiming sub=admin: %v", err)
	} else {
		d.fail("alg:none ID token: err = %v", err)
	}
}

package oauthclient

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/oauthsafe/oauthsafe/tokenstore"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/internal/dpop"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"github.com/oauthsafe/oauthsafe/validate"
)

// refreshFetch is the engine.FetchFunc of a user's token source: one
// refresh_token grant with the record's refresh token, inside the Store
// transaction. It sends no scope unless narrow is set (RFC 6749 §6: omitted
// means as granted); a narrow set must be within the record's granted
// scopes, or the request is refused before it is made (a *strictnet.PolicyError),
// and narrows the access token only: the record keeps the grant. A
// rotated refresh token goes to the engine as soon as the 200 body yields
// one. Then the granted scope must stay within the requested (or, when
// omitted, the previous) one, and a returned ID token must verify and name
// the record's subject (OpenID Connect Core §12.2). resource, when set,
// narrows the audience (RFC 8707) and is checked against an at+jwt access
// token.
//
// DPoP (S27): the record's key proves the request (a public client's
// refresh token is bound to it) and the token returned carries it. A record
// without a key gets a new one when DPoP is on (Config.DPoP, metadata) or
// the server answers use_dpop_nonce; it goes to the engine
// (Refresh.SetDPoPKey) before any proof of it is sent, so it is stored
// with the refresh token the server may bind to it.
func (c *Client) refreshFetch(narrow, resources []string) engine.FetchFunc {
	narrow, resources = slices.Clone(narrow), slices.Clone(resources)
	var keys dpop.StoredKeys
	return func(ctx context.Context, r *engine.Refresh) (*engine.Result, error) {
		res, err := c.refresh(ctx, r, &keys, narrow, resources)
		return res, fetchError(err)
	}
}

// refresh is one refresh of refreshFetch, its error not yet classified.
func (c *Client) refresh(ctx context.Context, r *engine.Refresh, keys *dpop.StoredKeys, narrow, resources []string) (*engine.Result, error) {
	rec := r.Record
	if err := c.checkRefreshRecord(rec); err != nil {
		return nil, err
	}
	form, requested, resource, err := refreshForm(rec, narrow, resources)
	if err != nil {
		return nil, err
	}
	key, newKey, err := c.refreshKey(r, keys)
	if err != nil {
		return nil, err
	}
	var d delivery
	tr, key, err := c.tokenCall(d.trace(ctx), form, key, newKey, r.Rotated)
	d.report(r, tr, err)
	if err != nil {
		return nil, err
	}
	scopes, err := c.checkScope(requested, tr)
	if err != nil {
		return nil, err
	}
	if err := c.checkRefreshedIDToken(ctx, rec, tr); err != nil {
		return nil, err
	}
	if err := checkAudience(tr.token.AccessToken, resource); err != nil {
		return nil, err
	}
	tr.token.RefreshToken = ""
	tr.token = dpop.WithKey(tr.token, key)
	if narrow != nil {
		// The access token is narrowed; the refresh token keeps the
		// grant (RFC 6749 §6), so the record's scopes stay.
		scopes = nil
	}
	return &engine.Result{Token: tr.token, Scopes: scopes}, nil
}

// checkRefreshRecord refuses (tokenstore.ErrLoginRequired) a record
// without a refresh token or of another issuer or client.
func (c *Client) checkRefreshRecord(rec *engine.Record) error {
	if rec == nil || rec.RefreshToken == "" {
		return fmt.Errorf("%w: no refresh token", tokenstore.ErrLoginRequired)
	}
	if rec.Issuer != c.cfg.Issuer || rec.ClientID != c.cfg.ClientID {
		return fmt.Errorf("%w: the stored record belongs to another issuer or client", tokenstore.ErrLoginRequired)
	}
	return nil
}

// refreshForm is the refresh_token request's form, with the scopes it
// asks for (narrow, checked within the record's, or the record's) and the
// resources (resources, or the record's as granted at login).
func refreshForm(rec *engine.Record, narrow, resources []string) (form url.Values, requested, resource []string, err error) {
	requested = rec.Scopes
	form = url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rec.RefreshToken}}
	if narrow != nil {
		if err := withinScopes(narrow, rec.Scopes); err != nil {
			return nil, nil, nil, err
		}
		form.Set("scope", strings.Join(narrow, " "))
		requested = narrow
	}
	resource = resources
	if resource == nil {
		resource = rec.Resources // as granted at login
	}
	for _, res := range resource {
		form.Add("resource", res)
	}
	return form, requested, resource, nil
}

// refreshKey is the DPoP key of a refresh: the record's, or a new one
// when DPoP is on, and the way to make a new one (newKey), which hands it
// to the engine (Refresh.SetDPoPKey) before any proof of it is sent.
func (c *Client) refreshKey(r *engine.Refresh, keys *dpop.StoredKeys) (key *dpop.Key, newKey func() (*dpop.Key, error), err error) {
	key, err = keys.Get(r.Record.DPoPKey.PKCS8())
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", tokenstore.ErrLoginRequired, err)
	}
	newKey = func() (*dpop.Key, error) {
		k, err := dpop.NewKey()
		if err != nil {
			return nil, err
		}
		pk, err := engine.KeyOf(k)
		if err != nil {
			return nil, err
		}
		r.SetDPoPKey(pk)
		return k, nil
	}
	if key == nil && c.dpopOn() {
		if key, err = newKey(); err != nil {
			return nil, nil, err
		}
	}
	return key, newKey, nil
}

// checkRefreshedIDToken verifies an ID token of a refresh and requires it
// to name the record's subject (OpenID Connect Core §12.2).
//
// A login without OpenID Connect (no subject recorded, no openid scope)
// asked for no ID token: one the server adds anyway is not used, so it is
// neither checked nor kept.
func (c *Client) checkRefreshedIDToken(ctx context.Context, rec *engine.Record, tr *tokenResponse) error {
	if tr.idToken == "" || (rec.Subject == "" && !c.openID()) {
		return nil
	}
	id, err := c.verifyIDToken(ctx, tr.idToken, validate.IDTokenCheck{AccessToken: tr.token.AccessToken})
	if err != nil {
		return err
	}
	if id.Subject != rec.Subject {
		return fmt.Errorf("%w: %w", ErrIDToken, &validate.ClaimError{Claim: "sub", Reason: "the refreshed ID token names another subject than the login"})
	}
	return nil
}

// withinScopes refuses a requested scope outside the granted ones.
func withinScopes(requested, granted []string) error {
	var extra []string
	for _, s := range requested {
		if !slices.Contains(granted, s) {
			extra = append(extra, s)
		}
	}
	if len(extra) > 0 {
		return fmt.Errorf("%w: refresh would ask for scopes not granted: %s", errScopeWidened, safetext.Clean(strings.Join(extra, " "), 200))
	}
	return nil
}

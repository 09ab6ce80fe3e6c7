package resourceclient

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/registration"
	"github.com/oauthsafe/oauthsafe/internal/storekey"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// client is the client identity used at one issuer.
type client struct {
	id     string
	secret secret.Value
	signer crypto.Signer // Credentials.PrivateKey of a pre-registered client, nil otherwise
	kid    string        // Credentials.KeyID
	method string
	kind   string // "pre-registered", "metadata-document" or "dynamic"
	key    string // the store key of a dynamic registration, "" otherwise
}

// redirectURL is the redirect URI registered and sent.
func (c *Client) redirectURL() string {
	if c.cfg.RedirectURL != "" {
		return c.cfg.RedirectURL
	}
	path := c.cfg.Loopback.Path
	if path == "" {
		path = "/callback"
	}
	host := "127.0.0.1"
	if c.cfg.Loopback.Listen != "" {
		host = c.cfg.Loopback.Listen
	}
	return "http://" + host + path
}

// clientFor picks the client identity at f's issuer, in the MCP
// specification's priority: pre-registered credentials for that issuer,
// a Client ID Metadata Document, a stored dynamic registration, a new
// dynamic registration (only when register is true). Credentials for
// another issuer are never used there (S28).
func (c *Client) clientFor(ctx context.Context, f *found, register bool) (*client, error) {
	if cr := c.cfg.Credentials; cr != nil && cr.Issuer == f.issuer {
		return &client{id: cr.ClientID, secret: cr.ClientSecret, signer: cr.PrivateKey, kid: cr.KeyID, method: cr.AuthMethod, kind: "pre-registered"}, nil
	}
	if c.cfg.ClientIDMetadataURL != "" && f.md.ClientIDMetadataDocumentSupported {
		return &client{id: c.cfg.ClientIDMetadataURL, method: "none", kind: "metadata-document"}, nil
	}
	key := storekey.Registration(f.issuer, c.redirectURL())
	cr, err := storedClient(ctx, c.store, f.issuer, c.redirectURL())
	switch {
	case err == nil:
		return &client{id: cr.ClientID, secret: cr.ClientSecret, method: cr.AuthMethod, kind: "dynamic", key: key}, nil
	case errors.Is(err, tokenstore.ErrNotFound), errors.Is(err, tokenstore.ErrCorrupt):
		// None, or one that does not read or names another issuer: it is
		// never used; register anew (and overwrite it).
	default:
		return nil, err
	}
	if !register {
		return nil, fmt.Errorf("%w: no client registered at this issuer", tokenstore.ErrLoginRequired)
	}
	return c.register(ctx, f, key)
}

// storedClient returns the client registered dynamically at issuer for
// redirectURL and kept in store. Errors: tokenstore.ErrNotFound when there
// is none, tokenstore.ErrCorrupt for a record that does not read or names
// another issuer (it is never used there), or the store's error.
func storedClient(ctx context.Context, store tokenstore.Store, issuer, redirectURL string) (*Credentials, error) {
	b, err := store.Get(ctx, storekey.Registration(issuer, redirectURL))
	if err != nil {
		return nil, err
	}
	r, err := registration.Parse(b, issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", tokenstore.ErrCorrupt, err)
	}
	cr := &Credentials{Issuer: issuer, ClientID: r.ClientID, AuthMethod: r.AuthMethod}
	if r.ClientSecret != "" {
		if cr.ClientSecret, err = secret.FromReader(strings.NewReader(r.ClientSecret)); err != nil {
			return nil, fmt.Errorf("%w: %w", tokenstore.ErrCorrupt, err)
		}
	}
	return cr, nil
}

// register runs RFC 7591 dynamic registration at f's issuer and stores
// the result under key.
func (c *Client) register(ctx context.Context, f *found, key string) (*client, error) {
	if f.md.RegistrationEndpoint == "" {
		return nil, fmt.Errorf("%w: the authorization server offers no dynamic registration, and no pre-registered client or client metadata document applies", ErrRegistration)
	}
	redirect := c.redirectURL()
	req := oauthclient.RegistrationRequest{
		RedirectURIs:    []string{redirect},
		ClientName:      c.cfg.ClientName,
		AuthMethod:      pickMethod(f.md.TokenEndpointAuthMethodsSupported),
		GrantTypes:      []string{"authorization_code", "refresh_token"},
		ResponseTypes:   []string{"code"},
		ApplicationType: "web",
	}
	if u, err := url.Parse(redirect); err == nil && u.Scheme == "http" {
		if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() || u.Hostname() == "localhost" {
			req.ApplicationType = "native"
		}
	}
	rc, err := oauthclient.Register(ctx, &f.md, c.cfg.HTTP, req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRegistration, err)
	}
	rec := registration.Record{V: 1, Issuer: f.issuer, RedirectURL: redirect, ClientID: rc.ClientID, ClientSecret: rc.ClientSecret.Reveal(), AuthMethod: rc.AuthMethod}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	if err := c.store.Update(ctx, key, func(ctx context.Context, tx tokenstore.Tx) error { return tx.Put(ctx, b) }); err != nil {
		return nil, err
	}
	c.log(ctx, "oauthsafe: registered client", "issuer", f.issuer, "method", rc.AuthMethod)
	return &client{id: rc.ClientID, secret: rc.ClientSecret, method: rc.AuthMethod, kind: "dynamic", key: key}, nil
}

// forget deletes a dynamic registration the server no longer knows
// (invalid_client), so that the next authorization registers anew. Only
// cl's own registration is deleted: one that another request or process
// has stored meanwhile (another client id) is kept, since its client may
// already hold the user's refresh token.
func (c *Client) forget(ctx context.Context, cl *client) error {
	if cl.key == "" {
		return nil
	}
	return c.store.Update(ctx, cl.key, func(ctx context.Context, tx tokenstore.Tx) error {
		b, err := tx.Get(ctx)
		if errors.Is(err, tokenstore.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		var r registration.Record
		if json.Unmarshal(b, &r) == nil && r.ClientID != "" && r.ClientID != cl.id {
			return nil // a newer registration: not the one refused
		}
		return tx.Delete(ctx)
	})
}

// pickMethod is the token endpoint authentication method asked for in a
// registration: none (a native client has no secret to keep) when the
// server lists it or lists nothing, else client_secret_basic, else
// client_secret_post.
func pickMethod(supported []string) string {
	for _, m := range []string{"none", "client_secret_basic", "client_secret_post"} {
		if len(supported) == 0 || slices.Contains(supported, m) {
			return m
		}
	}
	return "none"
}

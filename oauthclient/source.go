package oauthclient

import (
	"context"
	"errors"
	"time"

	"github.com/oauthsafe/oauthsafe/tokenstore"
	"golang.org/x/oauth2"
)

// TokenSourceConfig configures [Client.TokenSource]. Zero values are documented per field.
type TokenSourceConfig struct {
	// Store keeps the refresh token: a *tokenstore.Keyring for desktop
	// tools, an explicitly configured *tokenstore.EncryptedFile on headless
	// machines, or an application's own encrypted store. nil keeps the
	// refresh token in memory only (OnTokenChange still sees rotations).
	Store tokenstore.Store
	// Key is the store key. "" means tokenstore.Key(issuer, client id,
	// subject of the login), which needs a login with a subject.
	Key string
	// Margin is the refresh-ahead margin. 0 means 60 s.
	Margin time.Duration
	// LockDir is the cross-process lock directory. "" means the user cache directory.
	LockDir string
	// OnTokenChange is called with each refreshed token (refresh token
	// included) after it is stored and before it is used. nil means none.
	OnTokenChange func(ctx context.Context, t *oauth2.Token) error
}

// TokenSource returns the refresh lifecycle for a user's tokens: the access
// token is served from memory (lock-free while valid) and refreshed ahead of
// expiry by a single flight, within the process and across processes (a lock
// file per key); a rotated refresh token is persisted to Store before the new
// access token is released; invalid_grant deletes the stored refresh token
// and returns an error matching ErrLoginRequired; 5xx, timeouts and network
// errors keep it and return a *tokenstore.TemporaryError.
//
// login is the result of a completed flow: its refresh token is written to
// Store before TokenSource returns. login may be nil to resume from a refresh
// token already in Store (cfg.Key is then required); the first Token call
// refreshes. A refreshed ID token must name the login's subject. The returned source is safe for concurrent use; it also
// implements Invalidate for the API transport's 401 handling.
func (c *Client) TokenSource(ctx context.Context, cfg TokenSourceConfig, login *Tokens) (*tokenstore.Source, error) {
	key := cfg.Key
	if key == "" {
		if login == nil || login.Subject() == "" {
			return nil, errors.New("oauthclient: TokenSource needs a Key or a login with a subject")
		}
		key = tokenstore.Key(c.cfg.Issuer, c.cfg.ClientID, login.Subject())
	}
	var initial *oauth2.Token
	subject := ""
	if login != nil {
		subject = login.Subject()
		initial = login.OAuth2Token()
		if cfg.Store != nil && initial.RefreshToken != "" {
			if err := tokenstore.SaveRefreshToken(ctx, cfg.Store, key, initial.RefreshToken); err != nil {
				return nil, err
			}
		}
	}
	return tokenstore.NewSource(tokenstore.SourceConfig{
		Store:         cfg.Store,
		Key:           key,
		Refresh:       func(ctx context.Context, rt string) (*oauth2.Token, error) { return c.refresh(ctx, rt, subject) },
		Margin:        cfg.Margin,
		LockDir:       cfg.LockDir,
		OnTokenChange: cfg.OnTokenChange,
		Now:           c.cfg.Now,
	}, initial)
}

package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/storekey"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// This file holds what the login, token, status and logout commands share:
// profiles on disk (never a secret), the client built from a profile, the
// keyring store and the exit-code mapping.

// envClientSecret is the environment variable a client secret may come
// from. Secrets never come from a flag value (S16).
const envClientSecret = "OAUTHSAFE_CLIENT_SECRET"

// defaultProfile is the profile used when --profile is not given.
const defaultProfile = "default"

// keyringService is the service name of the refresh tokens in the keyring.
const keyringService = "oauthsafe"

// profile is what `oauthsafe login` remembers for later commands. It holds
// no secret: the refresh token is in the chosen store, the access token only in
// memory, and a client secret stays in its own file or the environment.
type profile struct {
	V                int       `json:"v"`
	Issuer           string    `json:"issuer"`
	ClientID         string    `json:"client_id"`
	Scopes           []string  `json:"scopes,omitempty"`    // requested (the grant is in the store's record)
	Resources        []string  `json:"resources,omitempty"` // RFC 8707 resource indicators
	CAFile           string    `json:"ca_file,omitempty"`
	ClientSecretFile string    `json:"client_secret_file,omitempty"` // a path, not a secret
	Subject          string    `json:"subject,omitempty"`
	LoggedInAt       time.Time `json:"logged_in_at,omitzero"`
	// Store is where the refresh token is: "keyring" ("" too) or "file".
	Store string `json:"store,omitempty"`
	// StoreFile is the encrypted file of the "file" store.
	StoreFile string `json:"store_file,omitempty"`
	// DPoP binds the tokens to a key (RFC 9449, login --dpop). The private
	// key is never here: it is in the store's record with the refresh
	// token it binds.
	DPoP bool `json:"dpop,omitempty"`
	// Resource is the URL a resource-first login (`login URL`) was given;
	// Issuer, ClientID and Resources were then discovered (resource.go).
	Resource string `json:"resource_url,omitempty"`
	// AllowLoopbackHTTP lets the profile's calls use plain http to
	// localhost, 127.0.0.0/8 and ::1 (login --allow-loopback-http).
	AllowLoopbackHTTP bool `json:"allow_loopback_http,omitempty"`
	// LegacyAccessTokenExpiry was written by earlier versions; it is read
	// and ignored (an access token's expiry is known only to the agent).
	LegacyAccessTokenExpiry time.Time `json:"access_token_expiry,omitzero"`

	// dpopKey is the key of token --dpop-key-file (machine.go); never saved.
	dpopKey *ecdsa.PrivateKey
}

var profileName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// errNoLogin: there is no profile or no stored refresh token.
var errNoLogin = errors.New("not logged in")

// profileDir is os.UserConfigDir()/oauthsafe.
func profileDir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no user config directory: %w", err)
	}
	return filepath.Join(d, "oauthsafe"), nil
}

func profilePath(name string) (string, error) {
	if !profileName.MatchString(name) {
		return "", fmt.Errorf("invalid profile name %q (letters, digits, '.', '_', '-')", name)
	}
	d, err := profileDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, name+".json"), nil
}

// loadProfile reads a profile. A missing one is errNoLogin. A profile file
// that others can write is refused: it names the CA to trust.
func loadProfile(name string) (*profile, error) {
	path, err := profilePath(name)
	if err != nil {
		return nil, err
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w (no profile %q)", errNoLogin, name)
	}
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("profile %s is not a regular file writable only by you", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, err
	}
	var p profile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || p.V != 1 || p.Issuer == "" || p.ClientID == "" {
		return nil, fmt.Errorf("profile %s is malformed", path)
	}
	return &p, nil
}

// saveProfile writes a profile atomically, with mode 0600 in a 0700 directory.
func saveProfile(name string, p *profile) error {
	path, err := profilePath(name)
	if err != nil {
		return err
	}
	p.V = 1
	p.LegacyAccessTokenExpiry = time.Time{}
	return writeFile0600(path, p)
}

// writeFile0600 writes v as JSON atomically, with mode 0600 in a 0700 directory.
func writeFile0600(path string, v any) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".profile-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// storeKey is the keyring key of a profile's refresh token: per issuer,
// client and subject, so accounts never collide (ProfileKey when the login
// had no ID token).
func (p *profile) storeKey(name string) string {
	if p.Resource != "" && len(p.Resources) == 1 {
		return storekey.Resource(p.Resources[0], p.Issuer, p.ClientID)
	}
	if p.Subject != "" {
		return tokenstore.Key(p.Issuer, p.ClientID, p.Subject)
	}
	return tokenstore.ProfileKey(p.Issuer, p.ClientID, name)
}

// clientFlags are the flags that describe a client.
type clientFlags struct {
	issuer, clientID, scope, caFile, secretFile string
}

func (f *clientFlags) bind(fs *flag.FlagSet, defaultScope string) {
	fs.StringVar(&f.issuer, "issuer", "", "issuer `URL` (https)")
	fs.StringVar(&f.clientID, "client-id", "", "client `ID` registered at the server")
	fs.StringVar(&f.scope, "scope", defaultScope, "space-separated `scopes` to request")
	fs.Var((*absPath)(&f.caFile), "ca-file", "`PEM` file of CA certificates to trust instead of the system roots (yours or root's, not writable by others; kept as an absolute path)")
	fs.Var((*absPath)(&f.secretFile), "client-secret-file", "`file` (mode 0600, yours) holding the client secret; or set "+envClientSecret)
}

// newClient builds the strict client for a profile, with discovery.
func newClient(ctx context.Context, e *env, p *profile) (*oauthclient.Client, error) {
	return newClientWith(ctx, e, p, nil)
}

// newClientWith builds the strict client for a profile; md, when not nil,
// is server metadata to use instead of discovery (checked all the same).
func newClientWith(ctx context.Context, e *env, p *profile, md *oauthclient.Metadata) (*oauthclient.Client, error) {
	cfg := oauthclient.Config{Issuer: p.Issuer, ClientID: p.ClientID, Scopes: p.Scopes, Metadata: md, DPoP: p.DPoP}
	if err := p.checkPaths(); err != nil {
		return nil, err
	}
	if p.CAFile != "" {
		pool, err := loadCAFile(p.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.HTTP.RootCAs = pool
	}
	s, err := clientSecret(e, p)
	if err != nil {
		return nil, err
	}
	cfg.ClientSecret = s
	cfg.DPoPKey = p.dpopKey
	if err := resourceClient(ctx, e, p, &cfg); err != nil {
		return nil, err
	}
	return oauthclient.New(ctx, cfg)
}

// loadCAFile loads the roots of a profile's CA file, checked as a trust
// file (strictnet.RootsFromFile: a regular file, yours or root's, not
// writable by others).
func loadCAFile(path string) (*x509.CertPool, error) {
	pool, err := strictnet.RootsFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	return pool, nil
}

// secretFileError is a client secret file that could not be used.
type secretFileError struct{ err error }

func (e *secretFileError) Error() string { return "the client secret file: " + e.err.Error() }
func (e *secretFileError) Unwrap() error { return e.err }

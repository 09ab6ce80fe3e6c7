package validate

import (
	"context"
	"net/http"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// JWKSConfig configures a [JWKS] cache.
type JWKSConfig struct {
	URL        string       // https URL of the key set
	HTTPClient *http.Client // the strict client from oauthclient; nil means http.DefaultClient
	MaxAge     time.Duration
	Cooldown   time.Duration
	MaxKeys    int
	Now        func() time.Time
}

// JWKS is a cached remote key set. It implements oidc.KeySet and is safe for
// concurrent use.
type JWKS struct {
	cfg    JWKSConfig
	remote *oidc.RemoteKeySet
}

var _ oidc.KeySet = (*JWKS)(nil)

// NewJWKS returns a key set cache for cfg.URL.
func NewJWKS(cfg JWKSConfig) (*JWKS, error) {
	ctx := context.Background()
	if cfg.HTTPClient != nil {
		ctx = oidc.ClientContext(ctx, cfg.HTTPClient)
	}
	return &JWKS{cfg: cfg, remote: oidc.NewRemoteKeySet(ctx, cfg.URL)}, nil
}

// VerifySignature implements oidc.KeySet.
func (k *JWKS) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	return k.remote.VerifySignature(ctx, jwt)
}

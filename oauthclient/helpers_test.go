package oauthclient

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"

	"github.com/oauthsafe/oauthsafe/secret"
	"golang.org/x/oauth2"
)

func isErr(err, target error) bool { return err != nil && errors.Is(err, target) }

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// mustSecret is a client secret for tests.
func mustSecret(v string) secret.Value {
	s, err := secret.FromReader(strings.NewReader(v))
	if err != nil {
		panic(err)
	}
	return s
}

// poolToken is what a server does per request: the user's pooled source,
// then its token.
func poolToken(ctx context.Context, pool *UserPool, key string) (*oauth2.Token, error) {
	src, err := pool.Source(ctx, key)
	if err != nil {
		return nil, err
	}
	return src.TokenContext(ctx)
}

package oauthclient_test

import (
	"context"
	"errors"
	"regexp"
	"testing"

	"github.com/oauthsafe/oauthsafe"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/tokenstore/sqlstore"
	"github.com/oauthsafe/oauthsafe/validate"
)

// TestConfigErrorsAreOne: a configuration error of any package matches the
// one sentinel (oauthsafe.ErrConfig, which is internal/cfgerr's, the one
// every package wraps) and reads "<package>: <what is wrong> (invalid
// configuration)".
func TestConfigErrorsAreOne(t *testing.T) {
	if oauthsafe.ErrConfig != cfgerr.ErrConfig {
		t.Fatal("the packages have different ErrConfig sentinels")
	}
	_, e1 := oauthclient.New(context.Background(), oauthclient.Config{Issuer: "https://id.example.com"})
	_, e2 := engine.NewSource(engine.SourceConfig{}, nil)
	_, e3 := engine.NewPool(engine.PoolConfig{})
	_, e4 := callback.New(callback.Config{})
	_, e5 := sqlstore.New(context.Background(), sqlstore.Config{})
	style := regexp.MustCompile(`^(oauthclient|tokenstore|callback|sqlstore): .+ \(invalid configuration\)$`)
	for i, err := range []error{e1, e2, e3, e4, e5} {
		if !errors.Is(err, oauthsafe.ErrConfig) || !style.MatchString(err.Error()) {
			t.Errorf("error %d = %v", i, err)
		}
	}
	_, err := validate.NewJWKS(validate.JWKSConfig{URL: "http://insecure.example/jwks"})
	if !errors.Is(err, oauthsafe.ErrConfig) || !regexp.MustCompile(`^validate: .+ \(invalid configuration\)$`).MatchString(err.Error()) {
		t.Errorf("validate: %v", err)
	}
}

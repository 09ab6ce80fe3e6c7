package oauthclient_test

import (
	"context"
	"errors"
	"regexp"
	"testing"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/validate"
)

// TestConfigErrorsAreOne: a configuration error of any package matches the
// one sentinel (oauthclient.ErrConfig is tokenstore.ErrConfig and
// validate.ErrConfig) and reads "<package>: <what is wrong> (invalid
// configuration)".
func TestConfigErrorsAreOne(t *testing.T) {
	if oauthclient.ErrConfig != tokenstore.ErrConfig || tokenstore.ErrConfig != validate.ErrConfig {
		t.Fatal("the packages have different ErrConfig sentinels")
	}
	_, e1 := oauthclient.New(context.Background(), oauthclient.Config{Issuer: "https://id.example.com"})
	_, e2 := tokenstore.NewSource(tokenstore.SourceConfig{}, nil)
	_, e3 := tokenstore.NewPool(tokenstore.PoolConfig{})
	style := regexp.MustCompile(`^(oauthclient|tokenstore): .+ \(invalid configuration\)$`)
	for i, err := range []error{e1, e2, e3} {
		if !errors.Is(err, oauthclient.ErrConfig) || !style.MatchString(err.Error()) {
			t.Errorf("error %d = %v", i, err)
		}
	}
	if _, err := validate.NewJWKS(validate.JWKSConfig{URL: "http://insecure.example/jwks"}); !errors.Is(err, oauthclient.ErrConfig) {
		t.Errorf("validate: %v", err)
	}
}

package oauthclient

import (
	"encoding/base64"
	"errors"
	"strings"

	"github.com/oauthsafe/oauthsafe/secret"
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

package oauthclient

import (
	"encoding/base64"
	"errors"
)

func isErr(err, target error) bool { return err != nil && errors.Is(err, target) }

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

package oauthclient

import (
	"errors"
	"testing"

	"github.com/oauthsafe/oauthsafe/validate"
)

// TestCheckUserInfoSubject: a UserInfo sub must equal the verified ID
// token's exactly (OIDC Core §5.3.2); anything else is a ClaimError for sub.
func TestCheckUserInfoSubject(t *testing.T) {
	tok := &validate.IDToken{StandardClaims: validate.StandardClaims{Subject: "user-42"}}
	if err := checkUserInfoSubject(tok, "user-42"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tok *validate.IDToken
		sub string
	}{{tok, "user-43"}, {tok, ""}, {tok, "USER-42"}, {nil, "user-42"}, {&validate.IDToken{}, ""}} {
		if err := checkUserInfoSubject(tc.tok, tc.sub); !errors.Is(err, &validate.ClaimError{Claim: "sub"}) {
			t.Errorf("%+v/%q: got %v", tc.tok, tc.sub, err)
		}
	}
}

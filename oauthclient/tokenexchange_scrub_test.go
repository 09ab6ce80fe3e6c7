package oauthclient_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"golang.org/x/oauth2"
)

// TestRefusalHoldsNoSentToken (S19, S22): a token exchange refused with
// an error_description (and error_uri) that echoes the tokens sent gets
// an error whose text holds neither the subject token nor the actor
// token: both are values we sent, scrubbed from the server's text.
func TestRefusalHoldsNoSentToken(t *testing.T) {
	ctx := context.Background()
	h := newHostile(t)
	c := h.client(t, oauthclient.Config{}, nil)
	const subjectValue, actorValue = "subject-token-value", "actor-token-value-7f3a"
	h.answer(fmt.Sprintf(`{"error":"invalid_request","error_description":"bad subject %s or actor %s","error_uri":"https://as.example/e?t=%s"}`,
		subjectValue, actorValue, actorValue))
	_, err := c.TokenExchange(oauthclient.TokenExchangeOptions{
		SubjectToken: subject, SubjectTokenType: oauthclient.TokenTypeAccessToken,
		ActorToken: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: actorValue}), ActorTokenType: oauthclient.TokenTypeAccessToken,
	}).TokenContext(ctx)
	var ae *oauthclient.AuthError
	if !errors.As(err, &ae) || ae.Code != "invalid_request" {
		t.Fatalf("Token = %v, want the server's *oauthclient.AuthError", err)
	}
	for _, s := range []string{err.Error(), ae.Description, ae.URI, fmt.Sprintf("%+v", err)} {
		if strings.Contains(s, actorValue) || strings.Contains(s, subjectValue) {
			t.Fatalf("the error holds a token sent: %q", s)
		}
	}
}

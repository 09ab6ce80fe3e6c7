package validate_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"

	"golang.org/x/oauth2"

	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/validate"
)

// ExampleIDTokenVerifier_Verify verifies an ID token issued by the
// in-process authorization server, then shows that the same token is
// refused for another flow's nonce.
func ExampleIDTokenVerifier_Verify() {
	s, err := oauthtest.Start(oauthtest.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, s.HTTPClient())

	// The key set and verifier, as oauthclient builds them from discovery.
	// The HTTP client is oauthsafe's strict one, here trusting the test CA.
	hc, err := strictnet.NewClient(strictnet.Config{RootCAs: s.RootCAs()})
	if err != nil {
		fmt.Println(err)
		return
	}
	keys, err := validate.NewJWKS(validate.JWKSConfig{URL: s.JWKSURL, HTTPClient: hc})
	if err != nil {
		fmt.Println(err)
		return
	}
	verifier, err := validate.NewIDTokenVerifier(validate.IDTokenConfig{
		Issuer: s.Issuer, ClientID: oauthtest.ClientWeb,
		Algorithms: []string{"RS256"}, KeySet: keys,
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	// An authorization-code flow with PKCE and a nonce.
	cfg := &oauth2.Config{
		ClientID: oauthtest.ClientWeb, ClientSecret: oauthtest.WebSecret,
		RedirectURL: oauthtest.WebRedirectURI, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: s.AuthURL, TokenURL: s.TokenURL, AuthStyle: oauth2.AuthStyleInHeader},
	}
	nonceBytes := make([]byte, 32)
	rand.Read(nonceBytes)
	nonce := base64.RawURLEncoding.EncodeToString(nonceBytes)
	pkce := oauth2.GenerateVerifier()
	cb, err := s.Login(ctx, cfg.AuthCodeURL("state-not-checked-here", oauth2.S256ChallengeOption(pkce),
		oauth2.SetAuthURLParam("nonce", nonce)), oauthtest.UserAlice)
	if err != nil {
		fmt.Println(err)
		return
	}
	u, _ := url.Parse(cb)
	tok, err := cfg.Exchange(ctx, u.Query().Get("code"), oauth2.VerifierOption(pkce))
	if err != nil {
		fmt.Println(err)
		return
	}
	raw, _ := tok.Extra("id_token").(string)

	id, err := verifier.Verify(ctx, raw, validate.IDTokenCheck{Nonce: nonce, AccessToken: tok.AccessToken})
	fmt.Println("verified:", err == nil, "issuer matches:", err == nil && id.Issuer == s.Issuer)

	_, err = verifier.Verify(ctx, raw, validate.IDTokenCheck{Nonce: "another-flow"})
	fmt.Println("other nonce refused:", errors.Is(err, &validate.ClaimError{Claim: "nonce"}))
	fmt.Println(err)
	// Output:
	// verified: true issuer matches: true
	// other nonce refused: true
	// validate: nonce mismatch
}

package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/assertion"
	"github.com/oauthsafe/oauthsafe/resourceclient"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// This file configures the client as a machine client (no browser, no
// user) when MCP_CONFORMANCE_CONTEXT holds machine credentials: a private
// key (client credentials with private_key_jwt), a workload assertion
// (the JWT-bearer grant), a user's token at the company's identity
// provider (enterprise-managed authorization), or a client secret at an
// authorization server that offers the client credentials grant and not
// the authorization code grant. It picks the grant from what the context
// holds and what the server offers, never from the scenario's name.

// machineContext are the context keys of a machine client.
type machineContext struct {
	// private_key_jwt: a PKCS #8 PEM key (signing_algorithm follows from it).
	PrivateKeyPEM    string `json:"private_key_pem"`
	SigningAlgorithm string `json:"signing_algorithm"`
	// A workload assertion for the JWT-bearer grant.
	ValidJWT string `json:"valid_jwt"`
	// Enterprise-managed authorization: the user's ID token at the
	// identity provider and this client's registration there.
	IdPIDToken       string `json:"idp_id_token"`
	IdPIssuer        string `json:"idp_issuer"`
	IdPTokenEndpoint string `json:"idp_token_endpoint"`
	IdPClientID      string `json:"idp_client_id"`
}

func init() {
	// wrong_audience_jwt and expired_jwt are there for negative tests of a
	// library; a deployment has one assertion, valid_jwt, and ignores them.
	for _, k := range []string{"private_key_pem", "signing_algorithm", "valid_jwt", "wrong_audience_jwt", "expired_jwt",
		"idp_id_token", "idp_issuer", "idp_token_endpoint", "idp_client_id"} {
		known[k] = true
	}
}

// machine sets cfg.Grant when raw (MCP_CONFORMANCE_CONTEXT, checked
// already) holds machine credentials for the client c.ClientID, or a
// client secret with no issuer at a server that offers only client
// credentials; it reports whether it did. The Grant is bound to the
// context's issuer; when the context names none, the client belongs to
// the authorization server the resource names, learned here once before
// the Grant is configured with it (the Grant then refuses any other).
func machine(cfg *resourceclient.Config, raw string, c conformanceContext) (bool, error) {
	var m machineContext
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return false, fmt.Errorf("MCP_CONFORMANCE_CONTEXT: %w", err)
	}
	keys := m.PrivateKeyPEM != "" || m.ValidJWT != "" || m.IdPIDToken != ""
	switch {
	case keys && c.ClientID == "":
		return false, errors.New("MCP_CONFORMANCE_CONTEXT: machine credentials need the client_id they belong to")
	case c.ClientID == "", c.Issuer != "" && !keys:
		return false, nil // no client, or a pre-registered one at its issuer
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var err error
	issuer, md := c.Issuer, (*oauthclient.Metadata)(nil)
	if issuer == "" {
		if issuer, md, err = namedIssuer(ctx, *cfg); err != nil {
			return false, fmt.Errorf("MCP_CONFORMANCE_CONTEXT: a client_id without an issuer needs the issuer the resource names: %w", err)
		}
	}
	var sec secret.Value
	if c.ClientSecret != "" {
		if sec, err = secret.FromReader(strings.NewReader(c.ClientSecret)); err != nil {
			return false, fmt.Errorf("MCP_CONFORMANCE_CONTEXT client_secret: %w", err)
		}
	}
	cr := resourceclient.Credentials{Issuer: issuer, ClientID: c.ClientID, ClientSecret: sec}
	switch {
	case m.IdPIDToken != "":
		if m.IdPIssuer == "" || m.IdPTokenEndpoint == "" || m.IdPClientID == "" {
			return false, errors.New("MCP_CONFORMANCE_CONTEXT: idp_id_token needs idp_issuer, idp_token_endpoint and idp_client_id")
		}
		idp, err := oauthclient.New(ctx, oauthclient.Config{
			Issuer:   m.IdPIssuer,
			ClientID: m.IdPClientID,
			Metadata: &oauthclient.Metadata{Issuer: m.IdPIssuer, TokenEndpoint: m.IdPTokenEndpoint},
			HTTP:     cfg.HTTP,
		})
		if err != nil {
			return false, fmt.Errorf("the identity provider: %w", err)
		}
		cfg.Grant = resourceclient.EnterpriseManaged(cr, idp, oauthclient.TokenExchangeOptions{
			SubjectToken: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: m.IdPIDToken}),
		})
	case m.ValidJWT != "":
		// The one assertion this run was handed: checked here (Func parses
		// what it returns: assertion.ErrExpired, assertion.ErrSource) and
		// again at each use.
		valid := assertion.Func(func(context.Context, string) (string, error) { return m.ValidJWT, nil })
		if _, err := valid.Assertion(ctx, issuer); err != nil {
			return false, fmt.Errorf("MCP_CONFORMANCE_CONTEXT valid_jwt: %w", err)
		}
		cfg.Grant = resourceclient.JWTBearer(cr, valid)
	case m.PrivateKeyPEM != "":
		key, err := parseKey(m.PrivateKeyPEM)
		if err != nil {
			return false, err
		}
		cfg.Grant = resourceclient.ClientCredentials(resourceclient.Credentials{Issuer: issuer, ClientID: c.ClientID, PrivateKey: key})
	case !sec.IsZero() && md != nil && slices.Contains(md.GrantTypesSupported, "client_credentials") && !slices.Contains(md.GrantTypesSupported, "authorization_code"):
		cfg.Grant = resourceclient.ClientCredentials(cr)
	default:
		return false, errors.New("MCP_CONFORMANCE_CONTEXT: a pre-registered client_id needs the issuer it belongs to")
	}
	return true, nil
}

// namedIssuer is the issuer the resource cfg.Resource names, and its
// metadata: the resource's 401 challenge (asked without a token), its
// protected resource metadata, the authorization server's metadata.
func namedIssuer(ctx context.Context, cfg resourceclient.Config) (string, *oauthclient.Metadata, error) {
	var challenge *http.Response
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Resource, nil)
	if err != nil {
		return "", nil, err
	}
	hc, err := strictnet.NewClient(cfg.HTTP)
	if err != nil {
		return "", nil, err
	}
	if resp, err := hc.Do(req); err == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized {
			challenge = resp
		}
	}
	d, err := apiclient.Discover(ctx, apiclient.DiscoveryConfig{
		Resource:     cfg.Resource,
		AcceptIssuer: func(context.Context, string) error { return nil },
		HTTP:         cfg.HTTP,
	}, challenge)
	if err != nil {
		return "", nil, err
	}
	md, err := oauthclient.Discover(ctx, d.Issuer, cfg.HTTP)
	if err != nil {
		return "", nil, err
	}
	return d.Issuer, md, nil
}

// parseKey reads a PKCS #8 PEM private key.
func parseKey(p string) (crypto.Signer, error) {
	b, _ := pem.Decode([]byte(p))
	if b == nil {
		return nil, errors.New("MCP_CONFORMANCE_CONTEXT private_key_pem: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("MCP_CONFORMANCE_CONTEXT private_key_pem: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("MCP_CONFORMANCE_CONTEXT private_key_pem: not a signing key")
	}
	return s, nil
}

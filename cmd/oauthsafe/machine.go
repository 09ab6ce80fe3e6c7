package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/assertion"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"golang.org/x/oauth2"
)

// This file is `token` for machines, with no user and nothing stored:
// client credentials (--client-credentials), the JWT-bearer grant with a
// workload's assertion file (--assertion-file) and token exchange
// (--exchange), each with DPoP on request (--dpop, --dpop-key-file).

const machineHelp = `
Machine tokens (no user, nothing stored; the token alone on stdout):
  oauthsafe token --client-credentials --issuer URL --client-id ID [--client-secret-file F] [--dpop] ...
  oauthsafe token --assertion-file F --issuer URL --client-id ID [--client-secret-file F] [--dpop] ...
  oauthsafe token --exchange --subject-token-file F --subject-token-type T --issuer URL --client-id ID
        [--audience A]... [--client-secret-file F] [--dpop] ...

--assertion-file F uses the JWT-bearer grant (RFC 7523) with the signed JWT
in F, such as a Kubernetes projected service-account token or a CI job's
OIDC token (mode 0600; an expired one is refused before it is sent).
--exchange trades the token in --subject-token-file (mode 0600) of type
--subject-token-type (access_token, id_token, jwt, or a type URN) for an
access token (RFC 8693), for --audience and --resource.
--dpop binds the token to a key (RFC 9449): token_type is "DPoP" and the
token is accepted only with a proof of that key. The key lives in this
process only, unless --dpop-key-file F (a PKCS #8 or SEC 1 PEM P-256 key,
mode 0600) names the key you make your own proofs with.
Client authentication: --client-secret-file or ` + envClientSecret + `, none
otherwise (the assertion or subject token is the credential).
`

// machineFlags are the flags of the machine modes.
type machineFlags struct {
	dpop                          bool
	dpopKeyFile                   string
	assertionFile                 string
	exchange                      bool
	subjectTokenFile, subjectType string
	audience                      stringList
}

func (m *machineFlags) bind(fs *flag.FlagSet) {
	fs.BoolVar(&m.dpop, "dpop", false, "bind the machine token to a DPoP key (RFC 9449)")
	fs.StringVar(&m.dpopKeyFile, "dpop-key-file", "", "PEM `file` (mode 0600) of the P-256 DPoP key; implies --dpop")
	fs.StringVar(&m.assertionFile, "assertion-file", "", "`file` (mode 0600) holding a workload's signed JWT: the JWT-bearer grant")
	fs.BoolVar(&m.exchange, "exchange", false, "token exchange (RFC 8693) of --subject-token-file")
	fs.StringVar(&m.subjectTokenFile, "subject-token-file", "", "`file` (mode 0600) holding the token to exchange")
	fs.StringVar(&m.subjectType, "subject-token-type", "", "`type` of the subject token: access_token, id_token, jwt or a URN")
	fs.Var(&m.audience, "audience", "`name` of the target service for --exchange (repeatable)")
}

// used reports whether a machine mode other than client credentials was asked for.
func (m *machineFlags) used() bool { return m.assertionFile != "" || m.exchange }

// anySet reports whether any machine flag was given.
func (m *machineFlags) anySet() bool {
	return m.used() || m.dpop || m.dpopKeyFile != "" || m.subjectTokenFile != "" || m.subjectType != "" || len(m.audience) > 0
}

// tokenTypes are the short names of --subject-token-type.
var tokenTypes = map[string]string{
	"access_token": "urn:ietf:params:oauth:token-type:access_token",
	"id_token":     "urn:ietf:params:oauth:token-type:id_token",
	"jwt":          "urn:ietf:params:oauth:token-type:jwt",
}

// runMachineToken is `token` in a machine mode: it prints one token.
func runMachineToken(ctx context.Context, e *env, o *tokenOptions) int {
	if code, ok := o.checkMachineFlags(e); !ok {
		return code
	}
	p, err := o.machineProfile()
	if err != nil {
		return e.fail(fmt.Errorf("token: --dpop-key-file: %w", err))
	}
	c, err := newClient(ctx, e, p)
	if err != nil {
		return e.fail(err)
	}
	src, code := o.machineSource(e, c, p)
	if src == nil {
		return code
	}
	tok, err := src.TokenContext(ctx)
	if err != nil {
		var te *tokenstore.TemporaryError
		if errors.As(err, &te) {
			err = te.Err // the retry time means nothing to a one-shot process
		}
		return e.fail(fmt.Errorf("token: %w", err))
	}
	return e.writeToken(o.output, o.apiVersion, false, &agentToken{AccessToken: tok.AccessToken, TokenType: tok.Type(), Expiry: tok.Expiry})
}

// checkMachineFlags refuses machine flags that do not go together: one
// mode, its client, its credential.
func (o *tokenOptions) checkMachineFlags(e *env) (code int, ok bool) {
	cf, m, cc := &o.client, &o.machine, o.clientCredentials
	modes := 0
	for _, on := range []bool{cc, m.assertionFile != "", m.exchange} {
		if on {
			modes++
		}
	}
	switch {
	case modes != 1:
		return e.usageError("token", "use one of --client-credentials, --assertion-file and --exchange"), false
	case cf.issuer == "" || cf.clientID == "":
		return e.usageError("token", "a machine token needs --issuer and --client-id"), false
	case cc && cf.secretFile == "" && e.getenv(envClientSecret) == "":
		return e.usageError("token", "--client-credentials needs --client-secret-file or %s", envClientSecret), false
	case !m.exchange && (m.subjectTokenFile != "" || m.subjectType != "" || len(m.audience) > 0):
		return e.usageError("token", "--subject-token-file, --subject-token-type and --audience go with --exchange"), false
	case m.exchange && (m.subjectTokenFile == "" || m.subjectType == ""):
		return e.usageError("token", "--exchange needs --subject-token-file and --subject-token-type"), false
	}
	for _, r := range o.resources {
		if err := checkResource(r); err != nil {
			return e.usageError("token", "%v", err), false
		}
	}
	return exitOK, true
}

// machineProfile is the profile of a machine token, never saved: the
// flags' client, and the DPoP key of --dpop-key-file.
func (o *tokenOptions) machineProfile() (*profile, error) {
	cf, m := &o.client, &o.machine
	p := &profile{Issuer: cf.issuer, ClientID: cf.clientID, Scopes: strings.Fields(cf.scope), CAFile: cf.caFile, ClientSecretFile: cf.secretFile, DPoP: m.dpop}
	if m.dpopKeyFile != "" {
		k, err := loadDPoPKey(m.dpopKeyFile)
		if err != nil {
			return nil, err
		}
		p.dpopKey, p.DPoP = k, true
	}
	return p, nil
}

// machineSource is the token source of the machine mode asked for; nil
// with the exit code when the exchange's subject token is unusable.
func (o *tokenOptions) machineSource(e *env, c *oauthclient.Client, p *profile) (*oauthclient.TokenSource, int) {
	m, resources := &o.machine, []string(o.resources)
	// Without --dpop the printed token is a bearer token: a key that dies
	// with this process would make it useless to the caller.
	noDPoP := !p.DPoP
	var src *oauthclient.TokenSource
	switch {
	case o.clientCredentials:
		src = c.ClientCredentials(oauthclient.GrantOptions{Resource: resources, NoDPoP: noDPoP})
	case m.assertionFile != "":
		src = c.JWTBearer(assertion.File(m.assertionFile), oauthclient.GrantOptions{Resource: resources, NoDPoP: noDPoP})
	default:
		typ := m.subjectType
		if full, ok := tokenTypes[typ]; ok {
			typ = full
		} else if !strings.HasPrefix(typ, "urn:") {
			return nil, e.usageError("token", "--subject-token-type must be access_token, id_token, jwt or a type URN")
		}
		subject, err := secret.FromFile(m.subjectTokenFile)
		if err != nil {
			return nil, e.fail(fmt.Errorf("token: --subject-token-file: %w", err))
		}
		src = c.TokenExchange(oauthclient.TokenExchangeOptions{
			SubjectToken:     oauth2.StaticTokenSource(&oauth2.Token{AccessToken: subject.Reveal()}),
			SubjectTokenType: typ,
			Audience:         m.audience,
			Resource:         resources,
			Scopes:           p.Scopes,
			NoDPoP:           noDPoP,
		})
	}
	return src, exitOK
}

// errDPoPKey: the --dpop-key-file does not hold a usable key.
var errDPoPKey = errors.New("not a PEM P-256 private key (PKCS #8 or SEC 1)")

// loadDPoPKey reads a P-256 private key from a secret file (mode 0600).
func loadDPoPKey(path string) (*ecdsa.PrivateKey, error) {
	v, err := secret.FromFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode([]byte(v.Reveal()))
	if block == nil {
		return nil, errDPoPKey
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errDPoPKey
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errDPoPKey
	}
	return ec, nil
}

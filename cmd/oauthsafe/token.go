package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

const tokenHelp = `
Usage: oauthsafe token [RESOURCE-URL | --profile NAME] [--output raw|json|exec-credential] [--force-refresh] [--id-token] [--no-agent]
       oauthsafe token --client-credentials --issuer URL --client-id ID --client-secret-file F [--scope S] [--resource URI]... [--ca-file PEM]

Prints a valid access token on stdout, followed by a newline, and nothing
else. Access tokens are never written to disk: they are kept in the memory
of the per-user agent (see ` + "`oauthsafe agent --help`" + `), which this command
starts on first use, so that calls while a token is valid make no network
request and concurrent calls cause one refresh. Without an agent
(--no-agent, OAUTHSAFE_NO_AGENT=1, or where none can run) each call
refreshes with the stored refresh token. A rotated refresh token is saved
before the new access token is printed, under a lock shared with other
oauthsafe processes. When the refresh token is no longer valid, it exits
with status 3: run ` + "`oauthsafe login`" + `.

--output json prints {"access_token", "token_type", "expiry" (RFC 3339)}.
After ` + "`login --dpop`" + ` the refresh is proven with the DPoP key stored with
the refresh token, and token_type is "DPoP": such a token is accepted only
with a proof of that key, which never leaves oauthsafe (exec-credential
refuses it).
--output exec-credential prints a Kubernetes ExecCredential
(client.authentication.k8s.io/v1, or v1beta1 when KUBERNETES_EXEC_INFO asks
for it) with status.token and status.expirationTimestamp, for kubectl:

  users:
  - name: oauthsafe
    user:
      exec:
        apiVersion: client.authentication.k8s.io/v1
        command: oauthsafe
        args: ["token", "--output", "exec-credential", "--profile", "k8s"]
        interactiveMode: Never

--force-refresh refreshes now, even while the access token is valid (a
token the API refused, new permissions granted at the server).
--id-token prints the login's ID token instead of the access token, in
every output format, refreshed when it has expired: what Kubernetes OIDC
authentication (kube-apiserver --oidc-issuer-url) takes as a bearer token:

        args: ["token", "--id-token", "--output", "exec-credential", "--profile", "k8s"]

With --client-credentials there is no user and nothing is stored: the
client authenticates with the secret from --client-secret-file (mode 0600)
or the OAUTHSAFE_CLIENT_SECRET environment variable.

Examples:
  curl -H "Authorization: Bearer $(oauthsafe token)" https://api.example.com/me
  oauthsafe token --profile work --output json
  kubectl config set-credentials oauthsafe --exec-api-version=client.authentication.k8s.io/v1 \
      --exec-command=oauthsafe --exec-arg=token --exec-arg=--output --exec-arg=exec-credential \
      --exec-interactive-mode=Never
  oauthsafe token --client-credentials --issuer https://id.example.com \
      --client-id reporting --client-secret-file ~/.config/reporting/secret --scope api.read
`

// tokenOptions are the flags and the argument of `oauthsafe token`.
type tokenOptions struct {
	client            clientFlags
	profile           string
	clientCredentials bool
	output            string
	noAgent           bool
	force             bool
	idToken           bool
	resources         stringList
	machine           machineFlags // machine.go
	// resource is the URL of a resource-first profile ("" for none).
	resource string
	// apiVersion is the ExecCredential version to answer with, and
	// interactive whether the terminal may be used (a passphrase prompt):
	// kubectl says both in KUBERNETES_EXEC_INFO.
	apiVersion  string
	interactive bool
}

func runToken(ctx context.Context, e *env, args []string) int {
	o, code, ok := parseTokenOptions(e, args)
	if !ok {
		return code
	}
	e.relogin = o.resource
	if code, ok := o.checkOutput(e); !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if o.clientCredentials || o.machine.used() {
		if o.idToken {
			return e.usageError("token", "--id-token needs a user's login; machine tokens have no ID token")
		}
		return runMachineToken(ctx, e, o)
	}
	if code, ok := o.checkUserFlags(e); !ok {
		return code
	}
	if !o.interactive {
		e = &env{stdout: e.stdout, stderr: e.stderr, getenv: e.getenv, cmd: e.cmd}
	}
	tok, err := getToken(ctx, e, o.profile, o.noAgent, tokenWant{Force: o.force, IDToken: o.idToken})
	if err != nil {
		return e.fail(fmt.Errorf("token: %w", err))
	}
	return e.writeToken(o.output, o.apiVersion, o.idToken, tok)
}

// parseTokenOptions parses token's flags and resource URL; ok is false
// with the exit code when the command ends there (--help, a usage error).
func parseTokenOptions(e *env, args []string) (o *tokenOptions, code int, ok bool) {
	o = &tokenOptions{}
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	o.bind(fs)
	fs.Usage = usageFunc(e, fs, tokenHelp+machineHelp)
	if o.resource, code, ok = parseFlagsResource(e, fs, args); !ok {
		return nil, code, false
	}
	resourceProfileFor(fs, &o.profile, o.resource)
	return o, exitOK, true
}

func (o *tokenOptions) bind(fs *flag.FlagSet) {
	o.client.bind(fs, "")
	fs.StringVar(&o.profile, "profile", currentProfile(), "profile `NAME` saved by login")
	fs.BoolVar(&o.clientCredentials, "client-credentials", false, "use the client credentials grant (no user, nothing stored)")
	fs.StringVar(&o.output, "output", outputRaw, "`format`: raw (the token alone), json, or exec-credential (kubectl)")
	fs.BoolVar(&o.noAgent, "no-agent", false, "do not use the agent: refresh directly (also "+envNoAgent+"=1)")
	fs.BoolVar(&o.force, "force-refresh", false, "refresh now, even while the access token is valid")
	fs.BoolVar(&o.idToken, "id-token", false, "print the ID token instead (for Kubernetes OIDC authentication), refreshed when expired")
	fs.Var(&o.resources, "resource", "RFC 8707 resource indicator `URI` (repeatable) for --client-credentials; a profile's come from login --resource")
	o.machine.bind(fs)
}

// checkOutput checks --output and, for exec-credential, reads what
// kubectl asks for (apiVersion, interactive).
func (o *tokenOptions) checkOutput(e *env) (code int, ok bool) {
	o.apiVersion = execCredentialV1
	o.interactive = e.stdin != nil
	switch o.output {
	case outputRaw, outputJSON:
	case outputExecCredential:
		var err error
		if o.apiVersion, o.interactive, err = parseExecInfo(e.getenv(envExecInfo)); err != nil {
			return e.fail(fmt.Errorf("token: %w", err)), false
		}
	default:
		return e.usageError("token", "--output must be raw, json or exec-credential, not %q", clean(o.output)), false
	}
	return exitOK, true
}

// checkUserFlags refuses, for a user's token (a profile's), the flags
// that belong to the machine modes, and a bad profile name.
func (o *tokenOptions) checkUserFlags(e *env) (code int, ok bool) {
	cf := &o.client
	switch {
	case o.machine.anySet():
		return e.usageError("token", "--dpop, --dpop-key-file and the --exchange flags go with --client-credentials, --assertion-file or --exchange; a profile's DPoP comes from login --dpop"), false
	case cf.issuer != "" || cf.clientID != "" || cf.scope != "" || cf.caFile != "" || cf.secretFile != "":
		return e.usageError("token", "--issuer, --client-id, --scope, --ca-file and --client-secret-file go with --client-credentials; the profile has them otherwise"), false
	case len(o.resources) > 0:
		return e.usageError("token", "--resource goes with --client-credentials; a profile's resources are given to login --resource"), false
	}
	if _, err := profilePath(o.profile); err != nil {
		return e.usageError("token", "%v", err), false
	}
	return exitOK, true
}

func (e *env) writeToken(format, apiVersion string, idToken bool, tok *agentToken) int {
	if err := writeToken(e.stdout, format, apiVersion, idToken, tok); err != nil {
		return e.fail(fmt.Errorf("token: %w", err))
	}
	return exitOK
}

// getToken returns a valid access token for a profile: from the agent
// (started when none runs), or by a direct refresh when the agent is off or
// cannot run. Nothing is said about the fallback on stdout.
// tokenWant is what a caller asks of getToken beyond a valid access token.
type tokenWant struct {
	Force   bool // refresh even while the access token is valid
	IDToken bool // the ID token too, valid
}

func getToken(ctx context.Context, e *env, name string, noAgent bool, want tokenWant) (*agentToken, error) {
	if _, err := loadProfile(name); err != nil {
		return nil, err // no agent is started for a profile that does not exist
	}
	if !noAgent && !agentDisabled(e.getenv) {
		tok, err := tokenFromAgent(ctx, e, name, want)
		if err == nil || !agentUnusable(err) {
			return tok, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	p, err := loadProfile(name)
	if err != nil {
		return nil, err
	}
	e.relogin = p.Resource
	src, err := profileSource(ctx, e, name, p)
	if err != nil {
		return nil, err
	}
	// A new process's source has no access token yet: its first call
	// refreshes, so Force needs nothing more here.
	tok, err := sourceToken(ctx, src, false, want.IDToken)
	// Before this process exits: a rotation whose write failed is written
	// now if the store works again (S29), never left in dying memory.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	src.Close(cctx)
	cancel()
	if err != nil {
		var te *tokenstore.TemporaryError
		if errors.As(err, &te) {
			err = te.Err // the retry time means nothing to a one-shot process
		}
		return nil, err
	}
	return tok, nil
}

// sourceToken gets the access token (and, with wantID, a valid ID token)
// from src: force drops the cached access token first, so a refresh is
// made; an ID token that has expired (or is about to) is refreshed too.
func sourceToken(ctx context.Context, src *oauthclient.TokenSource, force, wantID bool) (*agentToken, error) {
	tok, err := src.TokenContext(ctx)
	if err == nil && force {
		src.Invalidate(tok)
		tok, err = src.TokenContext(ctx)
	}
	if err != nil {
		return nil, err
	}
	out := &agentToken{AccessToken: tok.AccessToken, TokenType: tok.Type(), Expiry: tok.Expiry}
	if !wantID {
		return out, nil
	}
	idt, _ := tok.Extra("id_token").(string)
	exp, life, ok := idTokenExpiry(idt)
	if !ok || time.Until(exp) < min(30*time.Second, life/4) {
		src.Invalidate(tok)
		if tok, err = src.TokenContext(ctx); err != nil {
			return nil, err
		}
		out = &agentToken{AccessToken: tok.AccessToken, TokenType: tok.Type(), Expiry: tok.Expiry}
		idt, _ = tok.Extra("id_token").(string)
		if exp, _, ok = idTokenExpiry(idt); !ok || !exp.After(time.Now()) {
			return nil, errNoIDToken
		}
	}
	out.IDToken, out.IDExpiry = idt, exp
	return out, nil
}

// errNoIDToken: the server answered a refresh without a (valid) ID token.
var errNoIDToken = errors.New("the server gave no valid ID token on refresh (log in with the openid scope; some servers issue ID tokens only at login)")

// idTokenExpiry reads the exp and iat claims of an ID token the library
// verified when it received it: its expiry and lifetime.
func idTokenExpiry(raw string) (exp time.Time, life time.Duration, ok bool) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return time.Time{}, 0, false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, 0, false
	}
	var claims struct {
		Exp, Iat json.Number
	}
	if json.Unmarshal(b, &claims) != nil {
		return time.Time{}, 0, false
	}
	e, err := claims.Exp.Int64()
	if err != nil || e <= 0 {
		return time.Time{}, 0, false
	}
	exp = time.Unix(e, 0)
	if i, err := claims.Iat.Int64(); err == nil && i > 0 && i < e {
		life = exp.Sub(time.Unix(i, 0))
	} else {
		life = 2 * time.Minute
	}
	return exp, life, true
}

// agentUnusable reports whether err means "no agent can serve this call"
// (then the caller refreshes directly) rather than an answer to report.
func agentUnusable(err error) bool {
	var ae *agentError
	if errors.As(err, &ae) {
		return ae.code == "unavailable"
	}
	return true // no agent, or it could not be started or reached
}

// tokenFromAgent asks the agent, starting it when none answers.
func tokenFromAgent(ctx context.Context, e *env, name string, want tokenWant) (*agentToken, error) {
	cfgDir, err := profileDir()
	if err != nil {
		return nil, err
	}
	req := agentRequest{Op: "token", Profile: name, ConfigDir: cfgDir, Force: want.Force, IDToken: want.IDToken}
	if err := req.addCallerCredentials(e); err != nil {
		return nil, err
	}
	res, err := agentCall(ctx, e.getenv, req, 100*time.Second)
	if errors.Is(err, errNoAgent) {
		if err := startAgent(ctx, e.getenv); err != nil {
			return nil, err
		}
		res, err = agentCall(ctx, e.getenv, req, 100*time.Second)
	}
	if err != nil {
		return nil, err
	}
	if res.Token == nil || res.Token.AccessToken == "" {
		return nil, errors.New("agent: answer without a token")
	}
	return res.Token, nil
}

package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"strings"

	"github.com/oauthsafe/oauthsafe/secret"
)

// This file is how the agent serves each caller with that caller's own
// credentials (S16, S17). A credential never comes from the agent's
// environment: the agent removes OAUTHSAFE_CLIENT_SECRET and
// OAUTHSAFE_FILE_PASSPHRASE from its own environment when it starts (and
// startAgent does not pass them on), the caller resolves its client secret
// and passphrase exactly as a direct refresh would (the profile's secret
// file, else its own environment) and sends them with the request over the
// agent's socket (same uid only), and the agent keys each cached token
// source by the profile, everything in it that selects a credential
// (issuer, client id, store, files) and an HMAC of the credentials that
// opened it. A caller is served only a source opened with its own
// credentials: another caller's secret is never sent on its behalf, to its
// issuer or another.

// credentialEnv lists the environment variables that hold a credential:
// the agent never reads them from its own environment.
var credentialEnv = []string{envClientSecret, envFilePassphrase}

// maxEntriesPerProfile bounds the token sources the agent keeps for one
// profile (one per distinct caller credential); the least recently used
// one is closed when a new one is needed.
const maxEntriesPerProfile = 4

// clientSecret resolves the client secret of a profile as the caller sees
// it: the profile's secret file (checked by secret.FromFile), else the
// caller's OAUTHSAFE_CLIENT_SECRET read through e.getenv (never the
// process environment directly, so that the agent can give each caller's
// own); the zero Value for a public client.
func clientSecret(e *env, p *profile) (secret.Value, error) {
	if p.ClientSecretFile != "" {
		s, err := secret.FromFile(p.ClientSecretFile)
		if err != nil {
			return secret.Value{}, &secretFileError{err}
		}
		return s, nil
	}
	if v := e.getenv(envClientSecret); v != "" {
		return secret.FromReader(strings.NewReader(v))
	}
	return secret.Value{}, nil
}

// forgetCredentialEnv removes the credential variables from the agent's
// own environment, so that nothing in the agent process can read another
// caller's (or its starter's) secret from there.
func forgetCredentialEnv() {
	for _, k := range credentialEnv {
		os.Unsetenv(k)
	}
}

// withoutCredentials returns environ without the credential variables:
// the environment of a started agent.
func withoutCredentials(environ []string) []string { return withoutEnv(environ, credentialEnv...) }

// withoutEnv returns environ (KEY=value entries) without the variables
// named keys.
func withoutEnv(environ []string, keys ...string) []string {
	out := make([]string, 0, len(environ))
next:
	for _, kv := range environ {
		for _, k := range keys {
			if strings.HasPrefix(kv, k+"=") {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

// callerEnv is the environment a caller's token source is built with: the
// caller's passphrase and client secret (from the request) for the
// credential variables, the agent's own environment for the rest.
func callerEnv(getenv func(string) string, pass, clientSecret string) func(string) string {
	return func(k string) string {
		switch k {
		case envFilePassphrase:
			return pass
		case envClientSecret:
			return clientSecret
		}
		return getenv(k)
	}
}

// credentialBinding is the HMAC, under the agent's own random key, of the
// credentials a caller sent: the part of a source's cache key that ties it
// to them without keeping them in a comparable form.
func credentialBinding(key []byte, pass, clientSecret string) string {
	m := hmac.New(sha256.New, key)
	for _, v := range []string{pass, clientSecret} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(v)))
		m.Write(n[:])
		m.Write([]byte(v))
	}
	return hex.EncodeToString(m.Sum(nil))
}

// addCallerCredentials puts the caller's credentials for req's profile in
// req: the file store's passphrase (the agent must check this caller's,
// not use the one of whoever started it; without one in the environment,
// the direct path asks on the terminal or says what to set) and the
// client secret, resolved as a direct refresh would.
func (req *agentRequest) addCallerCredentials(e *env) error {
	p, err := loadProfile(req.Profile)
	if err != nil {
		return nil // the agent answers for a missing profile
	}
	if p.storeKind() == storeFile {
		if req.Passphrase = e.getenv(envFilePassphrase); req.Passphrase == "" {
			return errNeedPassphrase
		}
	}
	s, err := clientSecret(e, p)
	if err != nil {
		return err
	}
	req.ClientSecret = s.Reveal()
	return nil
}

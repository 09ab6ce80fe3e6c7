package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// This file writes an access token for its consumer: a shell (raw), a
// script (json) or kubectl (a client.authentication.k8s.io ExecCredential).

const (
	outputRaw            = "raw"
	outputJSON           = "json"
	outputExecCredential = "exec-credential"

	execCredentialV1      = "client.authentication.k8s.io/v1"
	execCredentialV1beta1 = "client.authentication.k8s.io/v1beta1"
	// envExecInfo is set by kubectl for a credential plugin.
	envExecInfo = "KUBERNETES_EXEC_INFO"
)

// tokenJSON is `token --output json`.
type tokenJSON struct {
	AccessToken string `json:"access_token,omitempty"`
	IDToken     string `json:"id_token,omitempty"` // with --id-token, instead of the access token
	TokenType   string `json:"token_type"`
	Expiry      string `json:"expiry,omitempty"` // RFC 3339, UTC; of the token printed
}

// execCredential is the Kubernetes ExecCredential (the same field names as
// k8s.io/client-go/pkg/apis/clientauthentication/v1).
type execCredential struct {
	APIVersion string               `json:"apiVersion"`
	Kind       string               `json:"kind"`
	Status     execCredentialStatus `json:"status"`
}

type execCredentialStatus struct {
	Token               string `json:"token"`
	ExpirationTimestamp string `json:"expirationTimestamp,omitempty"`
}

// execInfo is the part of KUBERNETES_EXEC_INFO that matters here.
type execInfo struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Spec       struct {
		Interactive bool `json:"interactive"`
	} `json:"spec"`
}

// parseExecInfo reads KUBERNETES_EXEC_INFO: the apiVersion to answer with
// (v1 when unset) and whether kubectl lets the plugin use the terminal.
func parseExecInfo(s string) (apiVersion string, interactive bool, err error) {
	if s == "" {
		return execCredentialV1, false, nil
	}
	if len(s) > 64<<10 {
		return "", false, errors.New(envExecInfo + " is too large")
	}
	var info execInfo
	if err := json.Unmarshal([]byte(s), &info); err != nil {
		return "", false, errors.New(envExecInfo + " is not valid JSON")
	}
	switch info.APIVersion {
	case "", execCredentialV1:
		return execCredentialV1, info.Spec.Interactive, nil
	case execCredentialV1beta1:
		return execCredentialV1beta1, info.Spec.Interactive, nil
	}
	return "", false, fmt.Errorf("%s asks for apiVersion %q; this version of oauthsafe answers %s or %s", envExecInfo, clean(info.APIVersion), execCredentialV1, execCredentialV1beta1)
}

// errDPoPBound refuses a DPoP-bound token to a consumer that can only
// send bearer tokens (kubectl, git): it would be refused by the server
// (RFC 9449 §7.2), and the key that could prove it never leaves oauthsafe.
var errDPoPBound = errors.New("the profile's tokens are DPoP-bound (login --dpop): they need a proof of a key that never leaves oauthsafe, which this consumer cannot send; log in without --dpop for it")

// bearerOnly returns errDPoPBound for a DPoP-bound token.
func bearerOnly(tok *agentToken) error {
	if strings.EqualFold(tok.TokenType, "DPoP") {
		return errDPoPBound
	}
	return nil
}

// writeToken writes tok in the chosen format; apiVersion is used by
// exec-credential, which refuses a DPoP-bound token.
func writeToken(w io.Writer, format, apiVersion string, idToken bool, tok *agentToken) error {
	value, expiry := tok.AccessToken, tok.Expiry
	if idToken {
		// An ID token is a plain bearer credential for Kubernetes OIDC,
		// never DPoP-bound.
		value, expiry = tok.IDToken, tok.IDExpiry
	}
	// Server text: refused unless it is a token's characters (S22), in
	// every format, before anything is written.
	if err := checkTokenText(value); err != nil {
		return err
	}
	exp := ""
	if !expiry.IsZero() {
		exp = expiry.UTC().Truncate(time.Second).Format(time.RFC3339)
	}
	switch format {
	case outputRaw:
		_, err := fmt.Fprintln(w, value)
		return err
	case outputJSON:
		if idToken {
			return json.NewEncoder(w).Encode(tokenJSON{IDToken: value, TokenType: "Bearer", Expiry: exp})
		}
		return json.NewEncoder(w).Encode(tokenJSON{AccessToken: value, TokenType: tok.TokenType, Expiry: exp})
	case outputExecCredential:
		if !idToken {
			if err := bearerOnly(tok); err != nil {
				return err
			}
		}
		return json.NewEncoder(w).Encode(execCredential{APIVersion: apiVersion, Kind: "ExecCredential", Status: execCredentialStatus{Token: value, ExpirationTimestamp: exp}})
	}
	return fmt.Errorf("unknown output %q", format)
}

package oauthclient

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe/internal/dpop"
	"golang.org/x/oauth2"
)

// leaks renders v in every way a program might print or log it and reports
// the first rendering that contains one of the secrets.
func leaks(t *testing.T, v any, secrets ...string) {
	t.Helper()
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		outs = append(outs, verb+": "+fmt.Sprintf(verb, v))
		outs = append(outs, verb+" in struct: "+fmt.Sprintf(verb, struct{ F any }{v}))
	}
	outs = append(outs, "Sprint: "+fmt.Sprint(v), "Sprintln: "+fmt.Sprintln(v))
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json: %v", err)
	}
	outs = append(outs, "json: "+string(j))
	j, _ = json.Marshal(map[string]any{"nested": v})
	outs = append(outs, "json nested: "+string(j))
	for _, h := range []slog.Handler{slog.NewTextHandler(new(bytes.Buffer), nil), slog.NewJSONHandler(new(bytes.Buffer), nil)} {
		var buf bytes.Buffer
		switch h.(type) {
		case *slog.TextHandler:
			h = slog.NewTextHandler(&buf, nil)
		default:
			h = slog.NewJSONHandler(&buf, nil)
		}
		slog.New(h).Info("msg", "v", v, slog.Any("any", v), slog.Group("g", "v", v))
		outs = append(outs, "slog: "+buf.String())
	}
	for _, out := range outs {
		for _, s := range secrets {
			if s != "" && (strings.Contains(out, s) || strings.Contains(out, fmt.Sprintf("%x", s))) {
				t.Errorf("secret leaked in %s", out)
			}
		}
	}
}

func TestPendingRedacts(t *testing.T) {
	h := newHostileAS(t)
	c := h.client(t)
	p, _, err := c.Start(context.Background(), StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	leaks(t, p, p.State(), p.p.Verifier, p.p.Nonce)
	leaks(t, *p, p.State(), p.p.Verifier, p.p.Nonce)
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var q Pending
	if err := q.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if q.State() != p.State() || q.p.Verifier != p.p.Verifier || q.p.Nonce != p.p.Nonce || !q.Expiry().Equal(p.Expiry()) {
		t.Fatal("round trip lost data")
	}
	for _, bad := range [][]byte{nil, []byte("{}"), []byte(`{"v":2}`), b[:len(b)/2], bytes.Repeat([]byte("a"), 20000)} {
		if err := q.UnmarshalBinary(bad); err != errBadPending || !errors.Is(err, ErrStateMismatch) {
			t.Errorf("UnmarshalBinary(%.20q) = %v", bad, err)
		}
	}
}

func TestTokensRedact(t *testing.T) {
	h := newHostileAS(t)
	c := h.client(t)
	p, good := h.start(t, c)
	toks, err := c.Exchange(context.Background(), p, good)
	if err != nil {
		t.Fatal(err)
	}
	leaks(t, toks, "AT-secret-value", "RT-secret-value", toks.RawIDToken())
	leaks(t, *toks, "AT-secret-value", "RT-secret-value", toks.RawIDToken())
	if toks.OAuth2Token().AccessToken != "AT-secret-value" || toks.OAuth2Token().RefreshToken != "RT-secret-value" {
		t.Fatal("accessors")
	}
}

// TestDPoPKeyNeverPrintedWithTokens: Tokens and Pending holding a DPoP key
// print no private key material under any fmt verb, slog or JSON (the
// key's own redaction is tested in internal/dpop).
func TestDPoPKeyNeverPrintedWithTokens(t *testing.T) {
	k, err := dpop.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	der, _ := k.Marshal()
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	d, err := priv.(*ecdsa.PrivateKey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{
		new(big.Int).SetBytes(d).String(),
		fmt.Sprintf("%x", d),
		base64.RawURLEncoding.EncodeToString(d),
		base64.StdEncoding.EncodeToString(der),
		base64.RawURLEncoding.EncodeToString(der),
		fmt.Sprintf("%x", der),
	}
	tok := dpop.WithKey(&oauth2.Token{AccessToken: "at", TokenType: "DPoP"}, k)
	toks := &Tokens{tok: tok, dpop: k}
	pend := &Pending{p: pendingWire{V: 1, State: strings.Repeat("s", 43), Verifier: strings.Repeat("v", 43), Issuer: "https://as", Redirect: "https://app/cb"}, dpop: k}
	for name, v := range map[string]any{"tokens": toks, "pending": pend, "tokens value": *toks, "pending value": *pend} {
		var out bytes.Buffer
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
		j, _ := json.Marshal(v)
		out.Write(j)
		slog.New(slog.NewJSONHandler(&out, nil)).Info("x", "v", v)
		slog.New(slog.NewTextHandler(&out, nil)).Info("x", "v", v)
		for _, s := range secrets {
			if strings.Contains(out.String(), s) {
				t.Errorf("%s: printed output holds private key material", name)
			}
		}
	}
}

// TestPrintedForms: what the docs of Tokens, Pending and
// DeviceAuthorization promise about their printed forms: a redacted
// summary under fmt and slog's text handler, {} (Tokens, Pending) or only
// the exported fields (DeviceAuthorization) in JSON.
func TestPrintedForms(t *testing.T) {
	tok := &Tokens{tok: &oauth2.Token{AccessToken: "at-secret", RefreshToken: "rt-secret", TokenType: "Bearer"}, scopes: []string{"openid"}}
	pend := &Pending{p: pendingWire{V: 1, State: strings.Repeat("s", 43), Verifier: strings.Repeat("v", 43), Issuer: "https://as", Redirect: "https://app/cb"}}
	da := &DeviceAuthorization{UserCode: "WDJB-MJHT", VerificationURI: "https://as/device", deviceCode: "device-code-secret"}
	for name, tc := range map[string]struct {
		v        any
		summary  string
		json     string
		notInAny string
	}{
		"tokens":  {tok, "oauthclient.Tokens{type=Bearer", `{}`, "at-secret"},
		"pending": {pend, "oauthclient.Pending{", `{}`, strings.Repeat("v", 43)},
		"device":  {da, "oauthclient.DeviceAuthorization{user_code=WDJB-MJHT", "", "device-code-secret"},
	} {
		if s := fmt.Sprint(tc.v); !strings.HasPrefix(s, tc.summary) || strings.Contains(s, tc.notInAny) {
			t.Errorf("%s: fmt %q", name, s)
		}
		var buf bytes.Buffer
		slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "v", tc.v)
		if !strings.Contains(buf.String(), tc.summary) || strings.Contains(buf.String(), tc.notInAny) {
			t.Errorf("%s: slog text %q", name, buf.String())
		}
		j, err := json.Marshal(tc.v)
		if err != nil || strings.Contains(string(j), tc.notInAny) || (tc.json != "" && string(j) != tc.json) {
			t.Errorf("%s: json %s %v", name, j, err)
		}
	}
}

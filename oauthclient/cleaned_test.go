package oauthclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/validate"
	"golang.org/x/oauth2"
)

// evilTexts are server texts with every kind of character S22 removes.
var evilTexts = []string{
	"\x1b]0;owned\x07\x1b[2J", "C1 \u009b2J \u0085", "raw \x9b2J \x80", "del \x7f",
	"bidi \u202eevil\u202c \u2066x\u2069 \u200e", strings.Repeat("\x1b[31mA\u009b", 1<<15), // long: twice in a JSON body under the 1 MiB bound
}

// TestServerTextIsCleaned (S22): server text with C0, C1 (raw and UTF-8),
// DEL, bidi controls and 1 MB lengths, through every path that reaches an
// error string: an endpoint's error and error_description, an HTTP status
// line (JWKS), a Bearer challenge, a device user_code. The error strings
// hold none of it, and still show the cleaned description, scrubbed of
// the secret we sent.
func TestServerTextIsCleaned(t *testing.T) {
	ctx := context.Background()
	for i, evil := range evilTexts {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/jwks": // a status line carrying the text
					conn, buf, _ := w.(http.Hijacker).Hijack()
					defer conn.Close()
					fmt.Fprintf(buf, "HTTP/1.1 503 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", strings.NewReplacer("\r", "", "\n", "").Replace(evil[:min(len(evil), 4000)]))
					buf.Flush()
					return
				case "/device":
					json.NewEncoder(w).Encode(map[string]any{"device_code": "dc", "user_code": evil, "verification_uri": "https://x.example/"})
					return
				case "/resource":
					w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+strings.ReplaceAll(evil, `"`, "")+`", error_description="`+strings.ReplaceAll(evil, `"`, "")+`"`)
					w.WriteHeader(http.StatusForbidden)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				json.NewEncoder(w).Encode(map[string]string{"error": "invalid_scope" + evil, "error_description": "plain words " + evil + " client-secret-value"})
			}))
			defer srv.Close()
			cs := &countingServer{Server: srv}
			hc := strictnet.Config{RootCAs: cs.pool()}
			var errs []error
			for _, k := range clientKinds {
				if k.name == "discovery" {
					continue
				}
				_, err := k.call(ctx, cs, hc)
				if (k.name == "api" || k.name == "device") && err == nil {
					// api: a challenge that does not parse, the 403 is the
					// caller's; device: JSON turned the raw bytes into U+FFFD,
					// a clean user_code.
					continue
				}
				errs = append(errs, err)
			}
			c, err := New(ctx, staticConfig(cs, hc))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.serviceSource(nil, nil).TokenContext(ctx)
			var ae *AuthError
			if !errors.As(err, &ae) || !strings.Contains(err.Error(), "plain words") || strings.Contains(err.Error(), "client-secret-value") {
				t.Errorf("token error %q: want the cleaned description, scrubbed", err)
			}
			_, err = c.keys.VerifySignature(ctx, fakeJWT())
			if !errors.Is(err, validate.ErrIssuerUnavailable) || !strings.Contains(err.Error(), "503") {
				t.Errorf("JWKS status: %v", err)
			}
			errs = append(errs, err)
			for i, err := range errs {
				if err == nil {
					t.Errorf("call %d: a hostile answer was accepted", i)
					continue
				}
				if s := err.Error(); hasUnsafe(s) || len(s) > 4096 {
					t.Errorf("error string not clean (%d bytes): %q", len(s), s[:min(len(s), 300)])
				}
			}
		})
	}
}

// hasUnsafe is an oracle independent of safetext: C0, DEL, C1, invalid
// UTF-8 and bidi controls.
func hasUnsafe(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f || r == 0x061c {
			return true
		}
	}
	return false
}

// TestStrictClientCleansStatusLine (S22; strictnet.NewClient: "a server's HTTP
// status line ... cleaned"): the Status of a response handed to the caller,
// by the strict client and by the API client, holds none of the server's
// control or bidi characters, and keeps the code and the cleaned words.
func TestStrictClientCleansStatusLine(t *testing.T) {
	evil := "Unavailable \x1b[2J\u009b31m \u202eevil\u202c \x7f"
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, _ := w.(http.Hijacker).Hijack()
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 503 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", evil)
		buf.Flush()
	}))
	defer srv.Close()
	pool := (&countingServer{Server: srv}).pool()
	hc, err := strictnet.NewClient(strictnet.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	src := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "access-token-value", TokenType: "Bearer"})
	api, err := apiclient.New(src, apiclient.Config{AllowedOrigins: []string{srv.URL}, HTTP: strictnet.Config{RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*http.Client{"strict": hc, "api": api} {
		resp, err := c.Get(srv.URL + "/x")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp.Body.Close()
		if hasUnsafe(resp.Status) || !strings.HasPrefix(resp.Status, "503 Unavailable") || !strings.Contains(resp.Status, "evil") {
			t.Errorf("%s: status %q, want the cleaned server text", name, resp.Status)
		}
	}
}

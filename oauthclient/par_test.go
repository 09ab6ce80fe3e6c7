package oauthclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// TestPARHostile: the pushed request carries the flow's parameters and
// the client's authentication; a bad PAR answer is a typed error and no
// authorization URL is returned.
func TestPARHostile(t *testing.T) {
	var answer atomic.Value
	var got atomic.Value
	par := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		got.Store(r.PostForm)
		a := answer.Load().(func(http.ResponseWriter))
		a(w)
	}))
	defer par.Close()
	h := newHostileAS(t)
	h.set("pushed_authorization_request_endpoint", par.URL+"/par")
	tests := []struct {
		name string
		a    func(w http.ResponseWriter)
		want error
	}{
		{"ok", func(w http.ResponseWriter) {
			writeJSON(w, 201, map[string]any{"request_uri": "urn:ietf:params:oauth:request_uri:abc", "expires_in": 60})
		}, nil},
		{"oauth error", func(w http.ResponseWriter) {
			writeJSON(w, 400, map[string]any{"error": "invalid_request", "error_description": "no"})
		}, ErrAuthorizationServer},
		{"no request_uri", func(w http.ResponseWriter) { writeJSON(w, 201, map[string]any{"expires_in": 60}) }, ErrMalformedResponse},
		{"request_uri with controls", func(w http.ResponseWriter) {
			writeJSON(w, 201, map[string]any{"request_uri": "urn:x\u202e", "expires_in": 60})
		}, ErrMalformedResponse},
		{"no expires_in", func(w http.ResponseWriter) {
			writeJSON(w, 201, map[string]any{"request_uri": "urn:x"})
		}, ErrMalformedResponse},
		{"HTML", func(w http.ResponseWriter) { w.WriteHeader(200); w.Write([]byte("<html>")) }, ErrMalformedResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			answer.Store(tt.a)
			c := h.client(t)
			p, authURL, err := c.Start(context.Background(), StartOptions{Resource: []string{"https://api.example/"}})
			if tt.want != nil {
				if !errors.Is(err, tt.want) || p != nil || authURL != "" {
					t.Fatalf("err = %v, url %q", err, authURL)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(authURL)
			if q := u.Query(); len(q) != 2 || q.Get("request_uri") != "urn:ietf:params:oauth:request_uri:abc" || q.Get("client_id") != "client-1" {
				t.Fatalf("browser URL %s", authURL)
			}
			f := got.Load().(url.Values)
			if f.Get("state") != p.State() || f.Get("code_challenge_method") != "S256" || f.Get("resource") != "https://api.example/" || f.Get("client_id") != "client-1" {
				t.Fatalf("pushed form %v", f)
			}
			if strings.Contains(authURL, p.State()) {
				t.Fatal("state in the browser URL")
			}
		})
	}
}

func TestCheckAudience(t *testing.T) {
	seg := func(v any) string { b, _ := json.Marshal(v); return b64(b) }
	at := func(typ string, aud any) string {
		return seg(map[string]any{"alg": "RS256", "typ": typ}) + "." + seg(map[string]any{"aud": aud}) + ".sig"
	}
	for _, tc := range []struct {
		name string
		at   string
		res  []string
		ok   bool
	}{
		{"opaque", "opaque-token", []string{"https://api"}, true},
		{"no resource asked", at("at+jwt", "https://other"), nil, true},
		{"aud matches", at("at+jwt", []string{"x", "https://api"}), []string{"https://api"}, true},
		{"aud string matches", at("at+jwt", "https://api"), []string{"https://api"}, true},
		{"aud differs", at("at+jwt", "https://other"), []string{"https://api"}, false},
		{"not an access token JWT", at("JWT", "https://other"), []string{"https://api"}, true},
	} {
		if err := checkAudience(tc.at, tc.res); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

package resourceclient_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe/internal/registration"
	"github.com/oauthsafe/oauthsafe/internal/storekey"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/oauthtest/demoapi"
	"github.com/oauthsafe/oauthsafe/resourceclient"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// TestResourceFirstLogin (S28, S3, S4, S6): from nothing but the resource
// URL: the resource's 401 names its metadata, the metadata names the
// issuer, the issuer is shown before anything is sent to it, the client
// registers dynamically, the authorization (PKCE S256, state, iss) asks
// for the challenge's scope and the resource, the token request names the
// same resource, and the request is retried with the token. A second
// client on the same store resumes without a login.
func TestResourceFirstLogin(t *testing.T) {
	as := startAS(t)
	log := watch(as)
	host := newResourceHost(t, as)
	resource := host.add(t, as, "/mcp", demoapi.ResourceConfig{ChallengeScope: []string{oauthtest.ScopeAPIRead}})
	store := new(tokenstore.Memory)
	ctx := context.Background()

	cfg := config(as, resource, store)
	var confirmed []string
	cfg.ConfirmIssuer = func(_ context.Context, issuer string) error {
		if as.Count("/register") != 0 || as.Count("/authorize") != 0 {
			t.Errorf("ConfirmIssuer called after a registration or an authorization")
		}
		confirmed = append(confirmed, issuer)
		return nil
	}
	cfg.WantRefreshToken = true
	rc, err := resourceclient.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := get(t, rc.HTTPClient(), resource+"/read"); err != nil || code != http.StatusOK {
		t.Fatalf("GET %s/read: %d, %v", resource, code, err)
	}
	if !slices.Equal(confirmed, []string{as.Issuer}) {
		t.Fatalf("ConfirmIssuer saw %q, want the issuer once", confirmed)
	}
	if as.Registrations() != 1 {
		t.Fatalf("%d dynamic registrations, want 1", as.Registrations())
	}
	auths, toks := log.authorizations(), log.tokens()
	if len(auths) != 1 || len(toks) != 1 {
		t.Fatalf("%d authorizations, %d token requests; want 1 and 1", len(auths), len(toks))
	}
	a := auths[0]
	if got := strings.Fields(a.Get("scope")); !slices.Equal(got, []string{oauthtest.ScopeAPIRead, "offline_access"}) {
		t.Errorf("scope %q: want the challenge's scope and offline_access (listed by the server, wanted)", got)
	}
	if a.Get("code_challenge_method") != "S256" || len(a.Get("state")) < 43 || a["resource"] == nil {
		t.Errorf("authorization request %v: want S256, a 256-bit state and a resource", a)
	}
	if !slices.Equal(a["resource"], []string{resource}) || !slices.Equal(toks[0]["resource"], []string{resource}) {
		t.Errorf("resource: authorization %q, token %q; want %q in both", a["resource"], toks[0]["resource"], resource)
	}
	if n := len(host.seenAt("/mcp")); n != 1 {
		t.Fatalf("the resource saw %d tokens, want 1 (the retry)", n)
	}
	s, err := rc.Session(ctx)
	if err != nil || s.Issuer != as.Issuer || s.Resource != resource || s.StoreKey != storekey.Resource(resource, as.Issuer, s.ClientID) {
		t.Fatalf("Session %+v, %v", s, err)
	}

	// A new process: same store, no login, no registration.
	rc2, err := resourceclient.New(ctx, config(as, resource, store))
	if err != nil {
		t.Fatal(err)
	}
	if code, err := get(t, rc2.HTTPClient(), resource+"/read"); err != nil || code != http.StatusOK {
		t.Fatalf("second client: %d, %v", code, err)
	}
	if len(log.authorizations()) != 1 || as.Registrations() != 1 {
		t.Fatalf("the second client logged in or registered again")
	}
	if got := log.tokens(); len(got) != 2 || got[1].Get("grant_type") != "refresh_token" || !slices.Equal(got[1]["resource"], []string{resource}) {
		t.Fatalf("second client's token request %v: want one refresh for the resource", got[len(got)-1])
	}
	// Token is the one the resource got; Logout revokes the refresh token
	// and deletes it, and the next process has nothing to resume.
	tok, err := rc2.Token(ctx)
	if seen := host.seenAt("/mcp"); err != nil || "Bearer "+tok.AccessToken != seen[len(seen)-1] {
		t.Fatalf("Token: %v", err)
	}
	if err := rc2.Logout(ctx); err != nil || as.Count("/revoke") != 1 {
		t.Fatalf("Logout: %v (%d revocations)", err, as.Count("/revoke"))
	}
	if rv := log.revocations(); len(rv) != 1 || rv[0].Get("token_type_hint") != "refresh_token" || rv[0].Get("token") == "" {
		t.Fatalf("revocation %v: want the refresh token with token_type_hint refresh_token (RFC 7009)", rv)
	}
	if _, err := engine.LoadRecord(ctx, store, s.StoreKey); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("the record outlived Logout: %v", err)
	}
	if b, err := store.Get(ctx, storekey.Registration(as.Issuer, redirect)); err != nil {
		t.Fatalf("Logout dropped the registration: %v", err)
	} else if r, err := registration.Parse(b, as.Issuer); err != nil || r.ClientID != s.ClientID {
		t.Fatalf("Logout dropped the registration: %v", err)
	}
}

// TestStepUpBounded (S28): a 403 insufficient_scope re-authorizes with the
// granted and the required scopes and retries; a resource that keeps
// asking for more gets at most MaxStepUps re-authorizations per request,
// then a *StepUpError; a scope beyond the ceiling is never requested.
func TestStepUpBounded(t *testing.T) {
	as := startAS(t)
	log := watch(as)
	host := newResourceHost(t, as)
	resource := host.add(t, as, "/mcp", demoapi.ResourceConfig{ChallengeScope: []string{oauthtest.ScopeAPIRead}})
	ctx := context.Background()

	rc, err := resourceclient.New(ctx, config(as, resource, nil))
	if err != nil {
		t.Fatal(err)
	}
	if code, err := get(t, rc.HTTPClient(), resource+"/write"); err != nil || code != http.StatusOK {
		t.Fatalf("GET /write with step-up: %d, %v", code, err)
	}
	auths := log.authorizations()
	if len(auths) != 2 {
		t.Fatalf("%d authorizations, want 2 (login, step-up)", len(auths))
	}
	if got := strings.Fields(auths[1].Get("scope")); !slices.Equal(got, []string{oauthtest.ScopeAPIRead, oauthtest.ScopeAPIWrite}) {
		t.Fatalf("step-up scope %q: want the granted and the required", got)
	}

	// A ceiling: api.write is never asked for; the request fails at once.
	cfg := config(as, resource, nil)
	cfg.ScopeCeiling = []string{oauthtest.ScopeAPIRead}
	capped, err := resourceclient.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = get(t, capped.HTTPClient(), resource+"/write")
	var se *resourceclient.StepUpError
	if !errors.As(err, &se) {
		t.Fatalf("beyond the ceiling: %v, want a *StepUpError", err)
	}
	for _, a := range log.authorizations()[2:] {
		if strings.Contains(a.Get("scope"), oauthtest.ScopeAPIWrite) {
			t.Fatalf("a scope beyond the ceiling was requested: %q", a.Get("scope"))
		}
	}

	// A hostile resource that asks for a new scope on every answer.
	hostile := newResourceHost(t, as)
	asks := []string{oauthtest.ScopeAPIWrite, "profile", "email", "openid"}
	var n int
	hostile.mux.HandleFunc("/.well-known/oauth-protected-resource/x", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"resource":"` + hostile.URL + `/x","authorization_servers":["` + as.Issuer + `"],"scopes_supported":["api.read"]}`))
	})
	hostile.mux.HandleFunc("/x/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+hostile.URL+`/.well-known/oauth-protected-resource/x"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+asks[n%len(asks)]+`"`)
		n++
		w.WriteHeader(http.StatusForbidden)
	})
	before := len(log.authorizations())
	rc3, err := resourceclient.New(ctx, config(as, hostile.URL+"/x", nil))
	if err != nil {
		t.Fatal(err)
	}
	_, err = get(t, rc3.HTTPClient(), hostile.URL+"/x/call")
	if !errors.As(err, &se) || se.Attempts != 2 {
		t.Fatalf("hostile resource: %v, want a *StepUpError after 2 re-authorizations", err)
	}
	if got := len(log.authorizations()) - before; got != 3 {
		t.Fatalf("%d authorizations for one request, want 3 (login and MaxStepUps = 2)", got)
	}
}

// TestTokenOnlyToItsResource (S14, S28): two resources on one host; each
// client sends its token only within its own resource (same origin, a
// path under the resource's by whole segments), never to the other, not
// through a redirect, a look-alike path or a dot segment; the tokens are
// stored under separate keys.
func TestTokenOnlyToItsResource(t *testing.T) {
	as := startAS(t)
	host := newResourceHost(t, as)
	a := host.add(t, as, "/a", demoapi.ResourceConfig{ChallengeScope: []string{oauthtest.ScopeAPIRead}})
	b := host.add(t, as, "/b", demoapi.ResourceConfig{ChallengeScope: []string{oauthtest.ScopeAPIRead}})
	host.mux.HandleFunc("/ab/read", func(w http.ResponseWriter, r *http.Request) {})
	host.mux.HandleFunc("/a/to-b", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, b+"/read", http.StatusFound)
	})
	store := new(tokenstore.Memory)
	ctx := context.Background()
	ra, err := resourceclient.New(ctx, config(as, a, store))
	if err != nil {
		t.Fatal(err)
	}
	rb, err := resourceclient.New(ctx, config(as, b, store))
	if err != nil {
		t.Fatal(err)
	}
	if code, err := get(t, ra.HTTPClient(), a+"/read"); err != nil || code != http.StatusOK {
		t.Fatalf("A: %d, %v", code, err)
	}
	if code, err := get(t, rb.HTTPClient(), b+"/read"); err != nil || code != http.StatusOK {
		t.Fatalf("B: %d, %v", code, err)
	}
	ta, tb := host.seenAt("/a"), host.seenAt("/b")
	if len(ta) != 1 || len(tb) != 1 || ta[0] == tb[0] {
		t.Fatalf("A saw %d tokens, B %d; want one each, different", len(ta), len(tb))
	}

	for _, u := range []string{b + "/read", host.URL + "/ab/read", a + "/../b/read", a + "/%2e%2e/b/read", host.URL + "/read"} {
		if _, err := get(t, ra.HTTPClient(), u); !errors.Is(err, resourceclient.ErrNotWithinResource) {
			t.Errorf("client of A, GET %s: %v, want ErrNotWithinResource", u, err)
		}
	}
	// A redirect from A to B: not followed by HTTPClient; a client that
	// follows redirects has its hop to B refused by the transport.
	if code, err := get(t, ra.HTTPClient(), a+"/to-b"); err != nil || code != http.StatusFound {
		t.Fatalf("redirect: %d, %v; want the 302 itself", code, err)
	}
	follow := &http.Client{Transport: ra.HTTPClient().Transport}
	if _, err := get(t, follow, a+"/to-b"); !errors.Is(err, resourceclient.ErrNotWithinResource) {
		t.Fatalf("followed redirect to B: %v, want ErrNotWithinResource", err)
	}
	if got := host.seenAt("/b"); len(got) != 1 || slices.Contains(got, ta[0]) {
		t.Fatalf("B saw A's token")
	}
	if got := host.seenAt("/ab"); len(got) != 0 {
		t.Fatalf("/ab saw a token")
	}
	sa, _ := ra.Session(ctx)
	sb, _ := rb.Session(ctx)
	if sa.StoreKey == sb.StoreKey {
		t.Fatal("the two resources' tokens share a store key")
	}
}

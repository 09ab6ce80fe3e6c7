package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/validate"
)

// TestForceRefresh: `token --force-refresh` refreshes at once while the
// access token is still valid (one refresh request, a new token), through
// the agent and without it; a plain `token` after it serves the new token
// from the agent with no request.
func TestForceRefresh(t *testing.T) {
	c := newCLI(t, oauthtest.Options{})
	mustLogin(t, c)
	refreshes := func() int { return c.srv.TokenRequests("refresh_token") }
	t1 := c.tokens(1)[0]
	r := refreshes()
	if again := c.tokens(1)[0]; again != t1 || refreshes() != r {
		t.Fatal("a warm token call made a request")
	}
	t2 := c.tokens(1, "--force-refresh")[0]
	if t2 == t1 || refreshes() != r+1 || c.userinfo(t2) != http.StatusOK {
		t.Fatalf("--force-refresh: new token %v, %d refreshes", t2 != t1, refreshes()-r)
	}
	if got := c.tokens(1)[0]; got != t2 || refreshes() != r+1 {
		t.Fatal("after --force-refresh the agent does not serve the new token")
	}
	t3 := c.tokens(1, "--force-refresh", "--no-agent")[0]
	if t3 == t2 || refreshes() != r+2 {
		t.Fatalf("--force-refresh --no-agent: %d refreshes", refreshes()-r)
	}
}

// TestIDTokenExecCredential: `token --id-token` prints the login's ID token
// (in raw, json and exec-credential), and kubectl, configured with the
// documented exec plugin line, calls a local https API server with it as
// the bearer token; the server checks each one against the OP's keys
// (signature, issuer, audience, expiry), as kube-apiserver's OIDC
// authenticator does. ID tokens live 3 s while access tokens live an hour:
// once the ID token has expired, the next kubectl call gets a new, valid
// one (one refresh). Needs kubectl on PATH (the go machine image has it).
func TestIDTokenExecCredential(t *testing.T) {
	c := newCLI(t, oauthtest.Options{IDTokenLifetime: 3 * time.Second, AccessTokenLifetime: time.Hour})
	mustLogin(t, c)
	ctx := context.Background()
	oc, err := oauthclient.New(ctx, oauthclient.Config{Issuer: c.srv.Issuer, ClientID: oauthtest.ClientNative,
		HTTP: strictnet.Config{RootCAs: c.srv.RootCAs()}})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := validate.NewJWKS(validate.JWKSConfig{URL: oc.Metadata().JWKSURI, HTTPClient: oc.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	ver, err := validate.NewIDTokenVerifier(validate.IDTokenConfig{Issuer: c.srv.Issuer, ClientID: oauthtest.ClientNative, KeySet: keys})
	if err != nil {
		t.Fatal(err)
	}
	verify := func(raw string) string {
		id, err := ver.Verify(ctx, raw, validate.IDTokenCheck{})
		if err != nil {
			return ""
		}
		return id.Subject
	}
	alice := oauthtest.Subject("alice")

	_, raw, _ := c.run("token", "--id-token")
	idt := strings.TrimSpace(raw)
	if verify(idt) != alice || idt == c.tokens(1)[0] {
		t.Fatalf("token --id-token printed no valid ID token of alice")
	}
	_, js, _ := c.run("token", "--id-token", "--output", "json")
	var tj tokenJSON
	if json.Unmarshal([]byte(js), &tj) != nil || tj.IDToken != idt || tj.AccessToken != "" || tj.Expiry == "" {
		t.Fatalf("--id-token --output json: %s", js)
	}

	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("needs kubectl on PATH (Debian kubernetes-client, or the go machine image's)")
	}
	var mu sync.Mutex
	var seen []string
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		mu.Lock()
		seen = append(seen, bearer)
		mu.Unlock()
		if verify(bearer) != alice {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"default"}}`))
	}))
	defer api.Close()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "api-ca.pem")
	os.WriteFile(caFile, pemCert(api.TLS.Certificates[0]), 0o600)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	kc := `apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: ` + api.URL + `
    certificate-authority: ` + caFile + `
users:
- name: oauthsafe
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ` + c.bin + `
      args: ["token", "--id-token", "--output", "exec-credential"]
      interactiveMode: Never
contexts:
- name: local
  context: {cluster: local, user: oauthsafe}
current-context: local
`
	os.WriteFile(kubeconfig, []byte(kc), 0o600)
	get := func() string {
		t.Helper()
		cmd := exec.Command(kubectl, "--kubeconfig", kubeconfig, "get", "--raw", "/api/v1/namespaces/default")
		cmd.Env = append(append([]string{}, c.env...), "KUBECONFIG="+kubeconfig)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl: %v\n%s", err, out)
		}
		mu.Lock()
		defer mu.Unlock()
		return seen[len(seen)-1]
	}
	first := get()
	if verify(first) != alice {
		t.Fatal("kubectl sent no valid ID token")
	}
	r := c.srv.TokenRequests("refresh_token")
	time.Sleep(4 * time.Second) // the ID token expires; the access token does not
	second := get()
	if second == first || verify(second) != alice || c.srv.TokenRequests("refresh_token") != r+1 {
		t.Fatalf("after the ID token expired: new %v, valid %v, %d refreshes", second != first, verify(second) == alice, c.srv.TokenRequests("refresh_token")-r)
	}
	if _, _, stderr := c.run("token", "--id-token", "--client-credentials", "--issuer", c.srv.Issuer, "--client-id", oauthtest.ClientService); !strings.Contains(stderr, "no ID token") {
		t.Fatalf("--id-token with client credentials: %q", stderr)
	}
}

// TestResourceOnEveryGrant: --resource reaches the server on every grant
// the CLI uses: the authorization request (login), the device grant
// (login --device) and client credentials (token), and a refresh of each
// login sends it again.
func TestResourceOnEveryGrant(t *testing.T) {
	const res = "https://api.example.test/"
	c := newCLI(t, oauthtest.Options{DevicePollInterval: time.Second})
	var mu sync.Mutex
	got := map[string]int{}
	c.srv.SetHook(func(r *http.Request) {
		r.ParseForm()
		q := r.Form
		if u, err := url.ParseQuery(r.URL.RawQuery); err == nil && len(u["resource"]) > 0 {
			q = u
		}
		if len(q["resource"]) == 1 && q.Get("resource") == res {
			mu.Lock()
			got[r.URL.Path+" "+q.Get("grant_type")]++
			mu.Unlock()
		}
	})
	secretFile := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secretFile, []byte(oauthtest.ServiceSecret), 0o600)
	if code, _, stderr := c.run("token", "--client-credentials", "--issuer", c.srv.Issuer, "--client-id", oauthtest.ClientService,
		"--client-secret-file", secretFile, "--ca-file", c.ca, "--resource", res); code != exitOK {
		t.Fatalf("client credentials with --resource: %s", stderr)
	}
	mustLogin(t, c, "--resource", res)
	c.tokens(1, "--force-refresh")
	c.deviceLogin("--profile", "tv", "--issuer", c.srv.Issuer, "--client-id", oauthtest.ClientDevice, "--ca-file", c.ca, "--resource", res)
	c.tokens(1, "--profile", "tv", "--force-refresh")
	mu.Lock()
	defer mu.Unlock()
	tokenPath, authPath, devPath := pathOf(t, c.srv.TokenURL), pathOf(t, c.srv.AuthURL), pathOf(t, c.srv.DeviceURL)
	for _, k := range []string{
		tokenPath + " client_credentials", authPath + " ", tokenPath + " authorization_code",
		tokenPath + " refresh_token", devPath + " ", tokenPath + " urn:ietf:params:oauth:grant-type:device_code",
	} {
		if got[k] == 0 {
			t.Errorf("no request %q carried the resource (got %v)", k, got)
		}
	}
	if got[tokenPath+" refresh_token"] < 2 {
		t.Errorf("the refreshes of both logins did not all carry the resource: %v", got)
	}
}

package resourceclient

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/oauthsafe/oauthsafe/strictnet"
)

// mock is a resource and an authorization server on one plain-http
// loopback server (AllowLoopbackHTTP), in the manner of the MCP
// conformance suite's mocks: /authorize redirects at once, /token issues
// "tok-N" tokens for the scope of the last authorization, /register
// answers per regMethod. Every request is recorded.
type mock struct {
	*httptest.Server
	mu       sync.Mutex
	log      []*http.Request
	forms    []url.Values // token and register bodies, by request
	asMeta   map[string]any
	prm      map[string]any // nil: no protected resource metadata
	prmPath  string         // where prm is served; "" means the path-inserted URL
	chal     string         // extra challenge parameters of the 401
	need     string         // a scope the resource requires (403 insufficient_scope)
	regReply map[string]any // the registration answer
	scope    string         // of the last authorization
	issued   map[string]string
	n        int
}

func newMock(t *testing.T) *mock {
	m := &mock{issued: map[string]string{}}
	m.Server = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.Close)
	m.asMeta = map[string]any{
		"issuer": m.URL + "/as", "authorization_endpoint": m.URL + "/as/authorize", "token_endpoint": m.URL + "/as/token",
		"registration_endpoint": m.URL + "/as/register", "code_challenge_methods_supported": []string{"S256"},
		"authorization_response_iss_parameter_supported": true, "token_endpoint_auth_methods_supported": []string{"none"},
	}
	m.prm = map[string]any{"resource": m.URL + "/mcp", "authorization_servers": []string{m.URL + "/as"}}
	m.regReply = map[string]any{"client_id": "dyn-client"}
	return m
}

func (m *mock) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.log = append(m.log, r)
	form, _ := url.ParseQuery(string(body))
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var v map[string]any
		json.Unmarshal(body, &v)
		form = url.Values{}
		for k, x := range v {
			b, _ := json.Marshal(x)
			form.Set(k, string(b))
		}
	}
	if id, sec, ok := r.BasicAuth(); ok {
		form.Set("basic", id+":"+sec)
	}
	m.forms = append(m.forms, form)
	writeJSON := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	prmPath := m.prmPath
	if prmPath == "" {
		prmPath = "/.well-known/oauth-protected-resource/mcp"
	}
	switch {
	case m.prm != nil && r.URL.Path == prmPath:
		writeJSON(200, m.prm)
	case m.asMeta != nil && r.URL.Path == "/.well-known/oauth-authorization-server/as":
		writeJSON(200, m.asMeta)
	case strings.HasSuffix(r.URL.Path, "/authorize"):
		q := r.URL.Query()
		m.scope = q.Get("scope")
		loc, _ := url.Parse(q.Get("redirect_uri"))
		v := url.Values{"code": {"code-1"}, "state": {q.Get("state")}}
		if m.asMeta != nil {
			v.Set("iss", m.asMeta["issuer"].(string))
		}
		loc.RawQuery = v.Encode()
		http.Redirect(w, r, loc.String(), http.StatusFound)
	case strings.HasSuffix(r.URL.Path, "/token"):
		m.n++
		tok := "tok-" + string(rune('0'+m.n))
		m.issued[tok] = m.scope
		writeJSON(200, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600, "scope": m.scope})
	case strings.HasSuffix(r.URL.Path, "/register"):
		writeJSON(201, m.regReply)
	case strings.HasPrefix(r.URL.Path, "/mcp"):
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		scope, known := m.issued[tok]
		switch {
		case !ok || !known:
			ch := `Bearer error="invalid_token"`
			if m.prm != nil && m.prmPath == "" {
				ch += `, resource_metadata="` + m.URL + prmPath + `"`
			}
			w.Header().Set("WWW-Authenticate", ch+m.chal)
			w.WriteHeader(http.StatusUnauthorized)
		case m.need != "" && !strings.Contains(" "+scope+" ", " "+m.need+" "):
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+m.need+`"`)
			w.WriteHeader(http.StatusForbidden)
		default:
			io.WriteString(w, "ok")
		}
	default:
		http.NotFound(w, r)
	}
}

// paths returns the paths asked, in order.
func (m *mock) paths() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, r := range m.log {
		out = append(out, r.URL.Path)
	}
	return out
}

// requests returns the recorded requests to path with their forms.
func (m *mock) requests(path string) ([]*http.Request, []url.Values) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var rs []*http.Request
	var fs []url.Values
	for i, r := range m.log {
		if r.URL.Path == path {
			rs, fs = append(rs, r), append(fs, m.forms[i])
		}
	}
	return rs, fs
}

// headless is the browser step of the conformance suite: GET the
// authorization URL without following, return its Location.
func headless(ctx context.Context, authURL string) (*url.URL, error) {
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return url.Parse(resp.Header.Get("Location"))
}

func (m *mock) config() Config {
	return Config{
		Resource: m.URL + "/mcp", RedirectURL: "http://127.0.0.1:3000/callback", Browser: headless,
		HTTP: strictnet.Config{AllowLoopbackHTTP: true},
	}
}

func (m *mock) call(t *testing.T, cfg Config) error {
	t.Helper()
	c, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.HTTPClient().Post(m.URL+"/mcp", "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || string(b) != "ok" {
		t.Fatalf("resource answered %d %q", resp.StatusCode, b)
	}
	return nil
}

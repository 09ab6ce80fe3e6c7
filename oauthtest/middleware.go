package oauthtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

const (
	loginPath         = "/login/username"
	devicePath        = "/device"
	discoveryPath     = "/.well-known/openid-configuration"
	rfc8414Path       = "/.well-known/oauth-authorization-server"
	authorizePath     = "/authorize"
	authorizeCallback = "/authorize/callback"
	tokenPath         = "/oauth/token"
	maxBody           = 1 << 20
)

// counters records how many requests reached each path and how many token
// requests carried each grant_type.
type counters struct {
	mu     sync.Mutex
	paths  map[string]int
	grants map[string]int
}

func (c *counters) add(path, grant string, isToken bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paths == nil {
		c.paths = make(map[string]int)
		c.grants = make(map[string]int)
	}
	c.paths[path]++
	if isToken {
		c.grants[grant]++
	}
}

// Count returns how many requests for path (for example "/oauth/token" or
// "/keys"; compare with the path of the endpoint URLs) reached the server
// since Start or the last Reset, whatever their outcome.
func (s *Server) Count(path string) int {
	s.counters.mu.Lock()
	defer s.counters.mu.Unlock()
	return s.counters.paths[path]
}

// TokenRequests returns how many requests reached the token endpoint with
// the given grant_type (for example "authorization_code", "refresh_token",
// "client_credentials") since Start or the last Reset. An empty grantType
// counts the requests that had none.
func (s *Server) TokenRequests(grantType string) int {
	s.counters.mu.Lock()
	defer s.counters.mu.Unlock()
	return s.counters.grants[grantType]
}

// Counts returns a copy of all path counters.
func (s *Server) Counts() map[string]int {
	s.counters.mu.Lock()
	defer s.counters.mu.Unlock()
	return maps.Clone(s.counters.paths)
}

// Reset sets every counter back to zero.
func (s *Server) Reset() {
	s.counters.mu.Lock()
	defer s.counters.mu.Unlock()
	s.counters.paths = nil
	s.counters.grants = nil
}

// SetHook installs h, which is called with a copy of every request (its
// body readable again) after it is counted and before it is handled. Nil
// removes the hook. h runs on the server's goroutines and must be safe for
// concurrent use.
func (s *Server) SetHook(h func(*http.Request)) {
	if h == nil {
		s.hook.Store(nil)
		return
	}
	s.hook.Store(&h)
}

// SetInterceptor installs f for fault injection: it sees every request
// after it is counted and after the hook, and when it returns true it has
// answered the request itself and the real server never sees it (for
// example to answer the token endpoint with a 503 once). Nil removes it.
// f must be safe for concurrent use.
func (s *Server) SetInterceptor(f func(w http.ResponseWriter, r *http.Request) bool) {
	if f == nil {
		s.interceptor.Store(nil)
		return
	}
	s.interceptor.Store(&f)
}

// handler assembles the middleware chain around the op router.
func (s *Server) handler(p *op.Provider) http.Handler {
	router := op.CreateRouter(strictProvider{p})
	mux := http.NewServeMux()
	s.registerUI(mux, p)
	mux.HandleFunc(parPath, s.servePAR)
	mux.HandleFunc(registrationPath, s.serveRegistration)
	mux.Handle("/", s.machineGrants(p, router))
	var h http.Handler = mux
	h = s.refreshIntrospection(h)
	h = s.clientAuth(h)
	h = s.tokenDPoP(h)
	h = s.userinfoDPoP(p)(h)
	h = s.frontChannel(h)
	h = s.issParameter(h)
	h = s.countAndHook(h)
	return h
}

// countAndHook buffers the (bounded) body, counts the request, runs the
// hook and the interceptor.
func (s *Server) countAndHook(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var body []byte
		if r.Body != nil && r.Body != http.NoBody {
			b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
			r.Body.Close()
			if err != nil || len(b) > maxBody {
				http.Error(w, "request body too large or unreadable", http.StatusRequestEntityTooLarge)
				return
			}
			body = b
		}
		reset := func(req *http.Request) *http.Request {
			req.Body = io.NopCloser(bytes.NewReader(body))
			req.ContentLength = int64(len(body))
			return req
		}
		path := r.URL.Path
		isToken := path == tokenPath
		grant := ""
		if isToken {
			if form, err := url.ParseQuery(string(body)); err == nil {
				grant = form.Get("grant_type")
			}
		}
		s.counters.add(path, grant, isToken)
		if h := s.hook.Load(); h != nil {
			(*h)(reset(r.Clone(r.Context())))
		}
		if f := s.interceptor.Load(); f != nil {
			if (*f)(w, reset(r.Clone(r.Context()))) {
				return
			}
		}
		rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, reset(r))
		s.logger.Debug("oauthtest request", "method", r.Method, "path", path, "grant_type", grant,
			"status", rec.status, "duration", time.Since(start))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// issParameter adds iss to every authorization response (RFC 9207) and
// adjusts the metadata to what this server really offers.
func (s *Server) issParameter(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case authorizePath, authorizeCallback:
			next.ServeHTTP(&issWriter{ResponseWriter: w, issuer: s.Issuer}, r)
		case discoveryPath, rfc8414Path:
			r2 := r.Clone(r.Context())
			r2.URL.Path = discoveryPath
			s.serveDiscovery(w, r2, next)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// issWriter rewrites the Location of a redirect to the client (any absolute
// URL; the login page is a relative one) to carry iss.
type issWriter struct {
	http.ResponseWriter
	issuer string
	wrote  bool
}

func (w *issWriter) WriteHeader(code int) {
	if !w.wrote && code >= 300 && code < 400 {
		if loc := w.Header().Get("Location"); loc != "" && !strings.HasPrefix(loc, "/") {
			if u, err := url.Parse(loc); err == nil {
				q := u.Query()
				q.Set("iss", w.issuer)
				u.RawQuery = q.Encode()
				w.Header().Set("Location", u.String())
			}
		}
	}
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *issWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

type bufferWriter struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func (b *bufferWriter) Header() http.Header         { return b.header }
func (b *bufferWriter) WriteHeader(code int)        { b.status = code }
func (b *bufferWriter) Write(p []byte) (int, error) { return b.buf.Write(p) }

func (s *Server) serveDiscovery(w http.ResponseWriter, r *http.Request, next http.Handler) {
	bw := &bufferWriter{header: make(http.Header), status: http.StatusOK}
	next.ServeHTTP(bw, r)
	var doc map[string]any
	if bw.status != http.StatusOK || json.Unmarshal(bw.buf.Bytes(), &doc) != nil {
		maps.Copy(w.Header(), bw.header)
		w.WriteHeader(bw.status)
		_, _ = w.Write(bw.buf.Bytes())
		return
	}
	doc["authorization_response_iss_parameter_supported"] = true
	doc["response_types_supported"] = []string{string(oidc.ResponseTypeCode)}
	doc["response_modes_supported"] = []string{string(oidc.ResponseModeQuery)}
	doc["grant_types_supported"] = []string{
		string(oidc.GrantTypeCode), string(oidc.GrantTypeRefreshToken),
		string(oidc.GrantTypeClientCredentials), string(oidc.GrantTypeDeviceCode),
		GrantJWTBearer, GrantTokenExchange,
	}
	doc["code_challenge_methods_supported"] = []string{string(oidc.CodeChallengeMethodS256)}
	delete(doc, "check_session_iframe")
	s.front.mu.Lock()
	if s.front.advertisePAR {
		doc["pushed_authorization_request_endpoint"] = s.PARURL()
		doc["require_pushed_authorization_requests"] = s.front.requirePAR
	}
	s.front.mu.Unlock()
	doc["dpop_signing_alg_values_supported"] = DPoPAlgs()
	// A public client may introspect its own refresh tokens (introspect.go).
	if methods, ok := doc["introspection_endpoint_auth_methods_supported"].([]any); ok && !slices.Contains(methods, any("none")) {
		doc["introspection_endpoint_auth_methods_supported"] = append(methods, "none")
	}
	doc["registration_endpoint"] = s.RegistrationURL()
	doc["client_id_metadata_document_supported"] = true
	out, err := json.Marshal(doc)
	if err != nil {
		http.Error(w, "discovery encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	_, _ = w.Write(out)
}

// strictProvider refuses, at the authorization endpoint, everything but
// response_type=code with response_mode query and a PKCE S256 challenge.
// The op package calls ValidateAuthRequest instead of its own validation
// (op.AuthorizeValidator), so the default checks run first here.
type strictProvider struct{ *op.Provider }

var _ op.AuthorizeValidator = strictProvider{}

func (p strictProvider) ValidateAuthRequest(ctx context.Context, req *oidc.AuthRequest, st op.Storage, v *op.IDTokenHintVerifier) (string, error) {
	c, err := st.GetClientByClientID(ctx, req.ClientID)
	if err != nil {
		return "", oidc.ErrInvalidRequestRedirectURI().WithDescription("unknown client").WithParent(err)
	}
	sub, err := op.ValidateAuthRequestClient(ctx, req, c, v)
	if err != nil {
		return "", err
	}
	switch {
	case req.ResponseMode != "" && req.ResponseMode != oidc.ResponseModeQuery:
		err = oidc.ErrInvalidRequest().WithDescription("only response_mode=query is supported")
	case req.CodeChallenge == "":
		err = oidc.ErrInvalidRequest().WithDescription("PKCE is required: code_challenge is missing")
	case req.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		err = oidc.ErrInvalidRequest().WithDescription("PKCE code_challenge_method must be S256")
	case !validChallenge(req.CodeChallenge):
		err = oidc.ErrInvalidRequest().WithDescription("code_challenge must be 43 base64url characters")
	}
	if err != nil {
		// The error itself goes back in the query, where iss is added.
		req.ResponseMode = oidc.ResponseModeQuery
		return "", err
	}
	return sub, nil
}

// validChallenge reports whether c looks like BASE64URL(SHA256(verifier)).
func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	for _, ch := range c {
		if !(ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			return false
		}
	}
	return true
}

// clientAuthPaths are the endpoints where a client authenticates.
var clientAuthPaths = []string{tokenPath, "/revoke", introspectPath, "/device_authorization", parPath}

// clientAuth makes each client use exactly its registered authentication
// method and verifies private_key_jwt assertions (including jti replay),
// which the op package does not do for client_credentials.
func (s *Server) clientAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !slices.Contains(clientAuthPaths, r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body) // already bounded and buffered
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, err := url.ParseQuery(string(body))
		if err != nil {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "malformed form body")
			return
		}
		method, clientID := oidc.AuthMethodNone, form.Get("client_id")
		basicID, _, hasBasic := r.BasicAuth()
		hasSecret, hasAssertion := form.Has("client_secret"), form.Has("client_assertion")
		switch {
		case hasBasic && (hasSecret || hasAssertion), hasSecret && hasAssertion:
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "more than one client authentication method")
			return
		case hasBasic:
			method = oidc.AuthMethodBasic
			if clientID, err = url.QueryUnescape(basicID); err != nil {
				writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "malformed basic credentials")
				return
			}
			if form.Has("client_id") && form.Get("client_id") != clientID {
				writeOAuthError(w, http.StatusBadRequest, "invalid_request", "client_id does not match the credentials")
				return
			}
		case hasSecret:
			method = oidc.AuthMethodPost
		case hasAssertion:
			method = oidc.AuthMethodPrivateKeyJWT
			id, ok := s.checkAssertion(w, r.Context(), form)
			if !ok {
				return
			}
			clientID = id
			r = r.WithContext(context.WithValue(r.Context(), assertionKey{}, id))
		}
		c, ok := s.storage.client(r.Context(), clientID)
		if !ok {
			writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "unknown client")
			return
		}
		if c.authMethod != method {
			writeOAuthError(w, http.StatusUnauthorized, "invalid_client",
				"client must authenticate with "+string(c.authMethod))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkAssertion verifies a private_key_jwt client assertion and records
// its jti; on failure it writes the error and returns false.
func (s *Server) checkAssertion(w http.ResponseWriter, ctx context.Context, form url.Values) (string, bool) {
	if form.Get("client_assertion_type") != oidc.ClientAssertionTypeJWTAssertion {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "unsupported client_assertion_type")
		return "", false
	}
	claims, err := op.VerifyJWTAssertion(ctx, form.Get("client_assertion"), s.jwtCheck)
	if err != nil {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "client assertion rejected")
		return "", false
	}
	if id := form.Get("client_id"); id != "" && id != claims.Issuer {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "client_id does not match the assertion")
		return "", false
	}
	if claims.JWTID == "" {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "client assertion has no jti")
		return "", false
	}
	now := time.Now()
	s.jtiMu.Lock()
	defer s.jtiMu.Unlock()
	for j, exp := range s.jtis {
		if now.After(exp) {
			delete(s.jtis, j)
		}
	}
	key := claims.Issuer + "\x00" + claims.JWTID
	if _, seen := s.jtis[key]; seen {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "client assertion jti was already used")
		return "", false
	}
	s.jtis[key] = claims.ExpiresAt.AsTime().Add(time.Minute)
	return claims.Issuer, true
}

func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="oauthtest"`)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

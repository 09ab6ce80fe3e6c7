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

// This file adds to the op package what it does not have: DPoP at the
// token endpoint (RFC 9449 §5), pushed authorization requests (RFC 9126)
// and resource indicators (RFC 8707). Each is a middleware in front of the
// op router plus a value in the request context that the storage reads
// when it creates an auth request or issues tokens.

const (
	parPath        = "/par"
	requestURIPfx  = "urn:ietf:params:oauth:request_uri:"
	parLifetime    = 60 * time.Second
	maxParRequests = 1000
)

// reqExtras is what the middleware tells the storage about a request.
type reqExtras struct {
	jkt       string   // verified DPoP proof key (token endpoint)
	dpopJKT   string   // dpop_jkt of an authorization request (RFC 9449 §10)
	resources []string // RFC 8707 resource parameters
}

type extrasKey struct{}

func extrasFrom(ctx context.Context) reqExtras {
	e, _ := ctx.Value(extrasKey{}).(reqExtras)
	return e
}

// parEntry is one pushed authorization request.
type parEntry struct {
	clientID string
	params   url.Values
	expires  time.Time
}

// front holds the state of the three extensions.
type front struct {
	dpop         *DPoPVerifier
	requirePAR   bool
	advertisePAR bool

	mu  sync.Mutex
	par map[string]parEntry // request_uri -> request
}

// SetRequirePAR switches require_pushed_authorization_requests: when on,
// the authorization endpoint refuses any request without a request_uri
// (and the metadata advertises the PAR endpoint).
func (s *Server) SetRequirePAR(on bool) {
	s.front.mu.Lock()
	defer s.front.mu.Unlock()
	s.front.requirePAR = on
	if on {
		s.front.advertisePAR = true
	}
}

// DPoP returns the token endpoint's proof verifier (for nonce rotation in tests).
func (s *Server) DPoP() *DPoPVerifier { return s.front.dpop }

// PARURL is the pushed authorization request endpoint.
func (s *Server) PARURL() string { return s.Issuer + parPath }

// validResource: RFC 8707 §2: an absolute URI without a fragment.
func validResource(r string) bool {
	u, err := url.Parse(r)
	return err == nil && u.IsAbs() && u.Fragment == "" && len(r) <= 2048
}

// frontChannel rewrites pushed requests at the authorization endpoint,
// enforces required PAR, and records dpop_jkt and resource for the storage.
func (s *Server) frontChannel(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != authorizePath {
			next.ServeHTTP(w, r)
			return
		}
		q := r.URL.Query()
		if ru := q.Get("request_uri"); ru != "" {
			e, ok := s.takePushed(ru)
			if !ok || q.Get("client_id") != e.clientID {
				http.Error(w, "request_uri is unknown, expired, already used or for another client", http.StatusBadRequest)
				return
			}
			// RFC 9126 §4: only the pushed parameters count.
			r = r.Clone(r.Context())
			r.URL.RawQuery = e.params.Encode()
			q = e.params
		} else {
			s.front.mu.Lock()
			required := s.front.requirePAR
			s.front.mu.Unlock()
			if required {
				http.Error(w, "this server requires pushed authorization requests (RFC 9126)", http.StatusBadRequest)
				return
			}
		}
		ex := reqExtras{dpopJKT: q.Get("dpop_jkt"), resources: q["resource"]}
		for _, res := range ex.resources {
			if !validResource(res) {
				http.Error(w, "invalid_target: resource must be an absolute URI without fragment", http.StatusBadRequest)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), extrasKey{}, ex)))
	})
}

func (s *Server) takePushed(ru string) (parEntry, bool) {
	s.front.mu.Lock()
	defer s.front.mu.Unlock()
	e, ok := s.front.par[ru]
	delete(s.front.par, ru) // single use
	if !ok || time.Now().After(e.expires) {
		return parEntry{}, false
	}
	return e, true
}

// servePAR is the pushed authorization request endpoint (RFC 9126 §2).
// The clientAuth middleware has checked the method; this checks the
// secret of client_secret_* clients (private_key_jwt assertions were
// verified by clientAuth).
func (s *Server) servePAR(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "POST only")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "malformed form body")
		return
	}
	form := r.PostForm
	clientID := form.Get("client_id")
	if id, secret, ok := r.BasicAuth(); ok {
		clientID, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		if s.storage.AuthorizeClientIDSecret(r.Context(), clientID, secret) != nil {
			writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
			return
		}
	} else if form.Has("client_secret") {
		if s.storage.AuthorizeClientIDSecret(r.Context(), clientID, form.Get("client_secret")) != nil {
			writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
			return
		}
	} else if id, ok := r.Context().Value(assertionKey{}).(string); ok {
		clientID = id
	}
	c, ok := s.storage.client(r.Context(), clientID)
	if !ok {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "unknown client")
		return
	}
	if form.Has("request_uri") {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "request_uri is not allowed in a pushed request")
		return
	}
	if form.Get("response_type") == "" || form.Get("redirect_uri") == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "response_type and redirect_uri are required")
		return
	}
	if !c.redirectAllowed(form.Get("redirect_uri")) {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "redirect_uri is not registered")
		return
	}
	params := url.Values{}
	for k, v := range form {
		switch k {
		case "client_secret", "client_assertion", "client_assertion_type":
			continue
		}
		params[k] = slices.Clone(v)
	}
	params.Set("client_id", clientID)
	// RFC 9449 §10.1: a DPoP proof on the PAR request binds the code.
	if len(r.Header.Values("DPoP")) > 0 {
		p, err := s.front.dpop.Verify(r, s.PARURL(), "")
		if err != nil {
			s.writeDPoPError(w, err)
			return
		}
		if j := params.Get("dpop_jkt"); j != "" && j != p.JKT {
			writeOAuthError(w, http.StatusBadRequest, "invalid_dpop_proof", "dpop_jkt does not match the proof key")
			return
		}
		params.Set("dpop_jkt", p.JKT)
	}
	ru := requestURIPfx + randomToken(24)
	s.front.mu.Lock()
	now := time.Now()
	for k, e := range s.front.par {
		if now.After(e.expires) {
			delete(s.front.par, k)
		}
	}
	if len(s.front.par) >= maxParRequests {
		s.front.mu.Unlock()
		writeOAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "too many pushed requests")
		return
	}
	s.front.par[ru] = parEntry{clientID: clientID, params: params, expires: now.Add(parLifetime)}
	s.front.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"request_uri": ru, "expires_in": int(parLifetime / time.Second)})
}

// PushedCount returns how many pushed requests are waiting to be used.
func (s *Server) PushedCount() int {
	s.front.mu.Lock()
	defer s.front.mu.Unlock()
	return len(s.front.par)
}

// tokenDPoP verifies DPoP proofs at the token endpoint, puts the proof's
// key and the resource parameters in the context for the storage, and
// turns the token_type of a response to a proven request into DPoP.
func (s *Server) tokenDPoP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != tokenPath || r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		var ex reqExtras
		body, _ := io.ReadAll(r.Body) // already bounded and buffered
		r.Body = io.NopCloser(bytes.NewReader(body))
		if form, err := url.ParseQuery(string(body)); err == nil {
			ex.resources = form["resource"]
		}
		for _, res := range ex.resources {
			if !validResource(res) {
				writeOAuthError(w, http.StatusBadRequest, "invalid_target", "resource must be an absolute URI without fragment")
				return
			}
		}
		if n := s.front.dpop.Nonce(); n != "" {
			w.Header().Set("DPoP-Nonce", n)
		}
		if len(r.Header.Values("DPoP")) > 0 {
			p, err := s.front.dpop.Verify(r, s.TokenURL, "")
			if err != nil {
				s.writeDPoPError(w, err)
				return
			}
			ex.jkt = p.JKT
		}
		r = r.WithContext(context.WithValue(r.Context(), extrasKey{}, ex))
		if ex.jkt == "" {
			next.ServeHTTP(w, r)
			return
		}
		bw := &bufferWriter{header: make(http.Header), status: http.StatusOK}
		next.ServeHTTP(bw, r)
		body = bw.buf.Bytes()
		var doc map[string]any
		if bw.status == http.StatusOK && json.Unmarshal(body, &doc) == nil {
			if tt, _ := doc["token_type"].(string); strings.EqualFold(tt, oidc.BearerToken) {
				doc["token_type"] = "DPoP"
				if out, err := json.Marshal(doc); err == nil {
					body = out
				}
			}
		}
		maps.Copy(w.Header(), bw.header)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(bw.status)
		_, _ = w.Write(body)
	})
}

func (s *Server) writeDPoPError(w http.ResponseWriter, err error) {
	de, ok := err.(*DPoPError)
	if !ok {
		de = &DPoPError{Code: DPoPInvalidProof, Description: "proof refused"}
	}
	if n := s.front.dpop.Nonce(); n != "" {
		w.Header().Set("DPoP-Nonce", n)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": de.Code, "error_description": de.Description})
}

// checkResources narrows an audience per RFC 8707: requested resources
// must all be among the granted ones (granted nil: any); the audience is
// the requested resources, or the granted ones when none is requested, or
// base when there are none at all.
func checkResources(requested, granted, base []string) ([]string, error) {
	for _, r := range requested {
		if granted != nil && !slices.Contains(granted, r) {
			return nil, oidc.ErrInvalidRequest().WithDescription("invalid_target: resource %s was not authorized", r)
		}
	}
	switch {
	case len(requested) > 0:
		return slices.Clone(requested), nil
	case len(granted) > 0:
		return slices.Clone(granted), nil
	}
	return slices.Clone(base), nil
}

// userinfoDPoP enforces RFC 9449 §7 at the userinfo endpoint, which the
// op package serves for bearer tokens only: a DPoP-bound access token is
// accepted only as "Authorization: DPoP" with a proof of its key (htu the
// userinfo URL, ath of the token, the server nonce when required) and
// then reaches the op router as a bearer token; a bound token sent as
// Bearer, an unbound one sent as DPoP, or a bad proof gets 401 with a
// DPoP challenge (use_dpop_nonce with a DPoP-Nonce when a nonce is due).
func (s *Server) userinfoDPoP(p *op.Provider) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if s.UserinfoURL == "" || "https://"+r.Host+r.URL.Path != s.UserinfoURL {
				next.ServeHTTP(w, r)
				return
			}
			auths := r.Header.Values("Authorization")
			if len(auths) != 1 {
				next.ServeHTTP(w, r)
				return
			}
			raw, dpop := strings.CutPrefix(auths[0], "DPoP ")
			if !dpop {
				raw, _ = strings.CutPrefix(auths[0], "Bearer ")
			}
			jkt := ""
			if id, _, _, ok := op.GetTokenIDAndSubjectFromToken(r.Context(), p, raw, oidc.AccessTokenType, false); ok {
				if at, err := s.storage.liveAccessToken(id); err == nil {
					jkt = at.jkt
				}
			}
			switch {
			case jkt == "" && !dpop:
				next.ServeHTTP(w, r)
				return
			case jkt == "":
				s.front.dpop.WriteDPoPChallenge(w, "invalid_token", "token is not DPoP-bound", "")
				return
			case !dpop:
				s.front.dpop.WriteDPoPChallenge(w, "invalid_token", "DPoP-bound token presented as Bearer", "")
				return
			}
			proof, err := s.front.dpop.Verify(r, s.UserinfoURL, raw)
			if err != nil {
				code, desc := DPoPInvalidProof, "proof refused"
				if de, ok := err.(*DPoPError); ok {
					code, desc = de.Code, de.Description
				}
				s.front.dpop.WriteDPoPChallenge(w, code, desc, "")
				return
			}
			if proof.JKT != jkt {
				s.front.dpop.WriteDPoPChallenge(w, "invalid_token", "proof key is not the key the token is bound to", "")
				return
			}
			r = r.Clone(r.Context())
			r.Header.Set("Authorization", "Bearer "+raw)
			r.Header.Del("DPoP")
			next.ServeHTTP(w, r)
		})
	}
}

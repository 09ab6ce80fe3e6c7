package oauthtest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// This file is client registration at run time: RFC 7591 dynamic
// registration at RegistrationURL, and Client ID Metadata Documents (a
// client_id that is the https URL of the client's metadata, fetched when
// the client first appears). Both are advertised in the metadata
// (registration_endpoint, client_id_metadata_document_supported).

const registrationPath = "/register"

// RegistrationURL is the RFC 7591 dynamic registration endpoint. It
// accepts a JSON client metadata document with redirect_uris (https, or
// http on a loopback host), token_endpoint_auth_method none,
// client_secret_basic (the default) or client_secret_post, grant_types
// within authorization_code and refresh_token, and application_type
// native or web (the default); it answers 201 with a new client_id (and a
// client_secret unless the method is none). A native client's loopback
// redirect URIs match any port (RFC 8252 §7.3).
func (s *Server) RegistrationURL() string { return s.Issuer + registrationPath }

// ForgetRegistrations removes every client registered at run time
// (dynamically or by a metadata document), as a provider that expired
// them would: their next token request gets invalid_client.
func (s *Server) ForgetRegistrations() {
	d := &s.storage.dynamic
	d.mu.Lock()
	defer d.mu.Unlock()
	d.m = nil
}

// Registrations returns how many clients are registered at run time.
func (s *Server) Registrations() int {
	d := &s.storage.dynamic
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.m)
}

// StartTLS starts ts (made with httptest.NewUnstartedServer) with a
// certificate of this server's CA for 127.0.0.1, so that a client given
// RootCAs trusts it: a resource server, or the host of a client's
// metadata document, which this server then fetches.
func (s *Server) StartTLS(ts *httptest.Server) {
	ts.TLS = s.ts.TLS.Clone()
	ts.StartTLS()
}

// dynamicClients are the clients registered at run time, by id.
type dynamicClients struct {
	mu sync.RWMutex
	m  map[string]*client
	// fetch reads a client metadata document (set by Start).
	fetch func(ctx context.Context, id string) (*client, error)
}

// client returns the client with id: a fixed one, one registered at run
// time, or (for an https client_id) one read from its metadata document.
func (s *storage) client(ctx context.Context, id string) (*client, bool) {
	if c, ok := s.clients[id]; ok {
		return c, true
	}
	d := &s.dynamic
	d.mu.RLock()
	c, ok := d.m[id]
	d.mu.RUnlock()
	if ok || !strings.HasPrefix(id, "https://") || d.fetch == nil {
		return c, ok
	}
	c, err := d.fetch(ctx, id)
	if err != nil {
		return nil, false
	}
	d.add(c)
	return c, true
}

func (d *dynamicClients) add(c *client) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = make(map[string]*client)
	}
	d.m[c.id] = c
}

// clientMetadata is the client metadata of RFC 7591 §2 that this server
// reads, in a registration request and in a metadata document.
type clientMetadata struct {
	ClientID        string   `json:"client_id,omitempty"`
	RedirectURIs    []string `json:"redirect_uris"`
	AuthMethod      string   `json:"token_endpoint_auth_method,omitempty"`
	GrantTypes      []string `json:"grant_types,omitempty"`
	ResponseTypes   []string `json:"response_types,omitempty"`
	ApplicationType string   `json:"application_type,omitempty"`
	ClientName      string   `json:"client_name,omitempty"`
}

// newClient checks md and builds the client it describes.
func (s *storage) newClient(id string, md clientMetadata) (*client, error) {
	if len(md.RedirectURIs) == 0 {
		return nil, errors.New("redirect_uris is required")
	}
	for _, r := range md.RedirectURIs {
		u, err := url.Parse(r)
		if err != nil || u.Host == "" || u.Fragment != "" || u.User != nil {
			return nil, errors.New("a redirect URI is not an absolute URL")
		}
		ip := net.ParseIP(u.Hostname())
		if u.Scheme != "https" && (u.Scheme != "http" || !(u.Hostname() == "localhost" || ip != nil && ip.IsLoopback())) {
			return nil, errors.New("a redirect URI must be https, or http on a loopback host")
		}
	}
	c := &client{id: id, appType: op.ApplicationTypeWeb, tokenType: op.AccessTokenTypeBearer,
		redirectURIs: slices.Clone(md.RedirectURIs), idLifetime: time.Hour}
	switch md.ApplicationType {
	case "", "web":
	case "native":
		c.appType = op.ApplicationTypeNative
	default:
		return nil, errors.New("application_type must be native or web")
	}
	switch md.AuthMethod {
	case "", "client_secret_basic":
		c.authMethod = oidc.AuthMethodBasic
	case "client_secret_post":
		c.authMethod = oidc.AuthMethodPost
	case "none":
		c.authMethod = oidc.AuthMethodNone
	default:
		return nil, errors.New("token_endpoint_auth_method must be none, client_secret_basic or client_secret_post")
	}
	grants := md.GrantTypes
	if grants == nil {
		grants = []string{"authorization_code"}
	}
	for _, g := range grants {
		switch g {
		case "authorization_code":
			c.grants = append(c.grants, oidc.GrantTypeCode)
		case "refresh_token":
			c.grants = append(c.grants, oidc.GrantTypeRefreshToken)
		default:
			return nil, errors.New("grant_types may hold authorization_code and refresh_token only")
		}
	}
	if c.authMethod != oidc.AuthMethodNone {
		c.secret = randomToken(24)
	}
	return c, nil
}

// serveRegistration is the RFC 7591 endpoint.
func (s *Server) serveRegistration(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	if r.Method != http.MethodPost {
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "POST a JSON client metadata document")
		return
	}
	var md clientMetadata
	if err := json.NewDecoder(r.Body).Decode(&md); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_client_metadata", "the body is not a JSON client metadata document")
		return
	}
	c, err := s.storage.newClient("dyn-"+randomToken(12), md)
	if err != nil {
		code := "invalid_client_metadata"
		if strings.Contains(err.Error(), "redirect") {
			code = "invalid_redirect_uri"
		}
		writeOAuthError(w, http.StatusBadRequest, code, err.Error())
		return
	}
	s.storage.dynamic.add(c)
	out := map[string]any{
		"client_id":                  c.id,
		"client_id_issued_at":        time.Now().Unix(),
		"redirect_uris":              c.redirectURIs,
		"token_endpoint_auth_method": string(c.authMethod),
		"grant_types":                c.grants,
		"application_type":           map[op.ApplicationType]string{op.ApplicationTypeNative: "native"}[c.appType],
		"client_name":                md.ClientName,
	}
	if out["application_type"] == "" {
		out["application_type"] = "web"
	}
	if c.secret != "" {
		out["client_secret"] = c.secret
		out["client_secret_expires_at"] = 0
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(out)
}

// fetchClientMetadata reads the Client ID Metadata Document at id (an
// https URL the server's CA vouches for): its client_id must be id, and
// the client it describes is public (token_endpoint_auth_method none).
func (s *Server) fetchClientMetadata(ctx context.Context, id string) (*client, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.metadataClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New("client metadata document not found")
	}
	var md clientMetadata
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&md); err != nil {
		return nil, err
	}
	if md.ClientID != id {
		return nil, errors.New("the document names another client_id")
	}
	if md.AuthMethod == "" {
		md.AuthMethod = "none"
	}
	if md.AuthMethod != "none" {
		return nil, errors.New("a client metadata document describes a public client")
	}
	if md.GrantTypes == nil {
		md.GrantTypes = []string{"authorization_code", "refresh_token"}
	}
	return s.storage.newClient(id, md)
}

package oauthtest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// codeLifetime bounds how long an authorization code can be exchanged.
const codeLifetime = time.Minute

// storage is this server's op.Storage: everything lives in memory under
// one mutex. Records handed to the op package are copies, so op never reads
// memory that a later request writes.
type storage struct {
	now             func() time.Time
	accessLifetime  time.Duration
	refreshLifetime time.Duration
	revokeFamily    bool
	requireResource bool               // Options.RequireResource
	withheld        []string           // scopes never granted (Options.WithheldScopes)
	clients         map[string]*client // fixed after construction
	users           map[string]User    // by username; fixed
	clientKeys      map[string]map[string]*rsa.PublicKey
	dynamic         dynamicClients // registered at run time (registration.go)

	mu            sync.Mutex
	authRequests  map[string]*authRequest
	codes         map[string]codeEntry     // code -> auth request
	accessTokens  map[string]*accessToken  // by token id
	refreshTokens map[string]*refreshToken // by token value
	refreshByID   map[string]string        // refresh token id -> value
	usedRefresh   map[string]string        // consumed refresh token -> family
	devices       map[string]*deviceEntry  // by device code
	userCodes     map[string]string        // user code -> device code
	keys          []*signingKey            // published; last one signs
}

type codeEntry struct {
	requestID string
	issued    time.Time
}

type accessToken struct {
	id       string
	clientID string
	subject  string
	audience []string
	scopes   []string
	issued   time.Time
	expiry   time.Time
	family   string // refresh token family, "" if none
	authTime time.Time
	jkt      string // DPoP key thumbprint the token is bound to (RFC 9449 §6), "" for bearer
}

type refreshToken struct {
	id        string
	token     string
	family    string
	clientID  string
	subject   string
	audience  []string
	scopes    []string
	amr       []string
	authTime  time.Time
	expiry    time.Time
	jkt       string   // DPoP binding of a public client's refresh token (RFC 9449 §5)
	resources []string // RFC 8707 resources granted at authorization
}

type deviceEntry struct {
	state    op.DeviceAuthorizationState
	userCode string
}

// signingKey is one RSA key of the server, usable both as op.SigningKey
// and (through publicKey) as op.Key.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.key.PublicKey }

var (
	_ op.Storage                    = (*storage)(nil)
	_ op.ClientCredentialsStorage   = (*storage)(nil)
	_ op.DeviceAuthorizationStorage = (*storage)(nil)
)

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// audienceFor is the audience of the tokens issued to clientID: the client
// itself, plus ClientResource when an API scope was granted.
func audienceFor(clientID string, scopes []string) []string {
	aud := []string{clientID}
	if clientID != ClientResource && (slices.Contains(scopes, ScopeAPIRead) || slices.Contains(scopes, ScopeAPIWrite)) {
		aud = append(aud, ClientResource)
	}
	return aud
}

// ---- auth requests ----

// authRequest implements op.AuthRequest.
type authRequest struct {
	id           string
	created      time.Time
	clientID     string
	redirectURI  string
	state        string
	nonce        string
	scopes       []string
	responseType oidc.ResponseType
	responseMode oidc.ResponseMode
	challenge    *oidc.CodeChallenge
	subject      string
	authTime     time.Time
	done         bool
	dpopJKT      string   // RFC 9449 §10: the code is bound to this key
	resources    []string // RFC 8707
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return amrFor(a.done) }
func (a *authRequest) GetAudience() []string                 { return audienceFor(a.clientID, a.scopes) }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

func amrFor(done bool) []string {
	if done {
		return []string{"pwd"}
	}
	return nil
}

func (a *authRequest) clone() *authRequest {
	c := *a
	c.scopes = slices.Clone(a.scopes)
	c.resources = slices.Clone(a.resources)
	if a.challenge != nil {
		ch := *a.challenge
		c.challenge = &ch
	}
	return &c
}

func (s *storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	if slices.Contains(req.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired()
	}
	a := &authRequest{
		id:           randomToken(16),
		created:      s.now(),
		clientID:     req.ClientID,
		redirectURI:  req.RedirectURI,
		state:        req.State,
		nonce:        req.Nonce,
		scopes:       slices.DeleteFunc(slices.Clone(req.Scopes), func(sc string) bool { return slices.Contains(s.withheld, sc) }),
		responseType: req.ResponseType,
		responseMode: req.ResponseMode,
		subject:      userID,
	}
	ex := extrasFrom(ctx)
	a.dpopJKT, a.resources = ex.dpopJKT, slices.Clone(ex.resources)
	if req.CodeChallenge != "" {
		a.challenge = &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authRequests[a.id] = a
	return a.clone(), nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authRequests[id]
	if !ok {
		return nil, errors.New("auth request not found")
	}
	return a.clone(), nil
}

// AuthRequestByCode consumes the code: a second use fails even when the
// first exchange failed (RFC 6749 §4.1.2: codes are single use).
func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.codes[code]
	if !ok {
		return nil, oidc.ErrInvalidGrant().WithDescription("code is invalid or was already used")
	}
	delete(s.codes, code)
	if s.now().Sub(e.issued) > codeLifetime {
		delete(s.authRequests, e.requestID)
		return nil, oidc.ErrInvalidGrant().WithDescription("code expired")
	}
	a, ok := s.authRequests[e.requestID]
	if !ok {
		return nil, oidc.ErrInvalidGrant().WithDescription("code is invalid")
	}
	ex := extrasFrom(ctx)
	if a.dpopJKT != "" && ex.jkt != a.dpopJKT {
		return nil, oidc.ErrInvalidGrant().WithDescription("the code is bound to another DPoP key (dpop_jkt)")
	}
	if _, err := checkResources(ex.resources, nilIfEmpty(a.resources), nil); err != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid_target: a resource was not authorized")
	}
	return a.clone(), nil
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.authRequests[id]; !ok {
		return errors.New("auth request not found")
	}
	s.codes[code] = codeEntry{requestID: id, issued: s.now()}
	return nil
}

func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.authRequests, id)
	for code, e := range s.codes {
		if e.requestID == id {
			delete(s.codes, code)
		}
	}
	return nil
}

// checkLogin marks the auth request id as authenticated by username.
func (s *storage) checkLogin(id, username, password string) error {
	u, ok := s.users[username]
	if !ok || subtle.ConstantTimeCompare([]byte(password), []byte(Password)) != 1 {
		return errors.New("wrong username or password")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authRequests[id]
	if !ok {
		return errors.New("auth request not found")
	}
	a.subject = u.Subject
	a.authTime = s.now()
	a.done = true
	return nil
}

// ---- tokens ----

// tokenInfo extracts what the storage needs from any op.TokenRequest.
// grantedResources are the RFC 8707 resources a token request may ask
// for: nil means any.
func grantedResources(req op.TokenRequest) []string {
	switch r := req.(type) {
	case *authRequest:
		return nilIfEmpty(r.resources)
	case *refreshRequest:
		return nilIfEmpty(r.resources)
	}
	return nil
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func tokenInfo(req op.TokenRequest) (clientID string, authTime time.Time, amr []string) {
	switch r := req.(type) {
	case *authRequest:
		return r.clientID, r.authTime, r.GetAMR()
	case *refreshRequest:
		return r.clientID, r.authTime, r.amr
	case *op.DeviceAuthorizationState:
		return r.ClientID, r.AuthTime, r.AMR
	case *clientCredentialsRequest:
		return r.clientID, time.Time{}, nil
	case *machineRequest:
		return r.clientID, time.Time{}, nil
	}
	return "", time.Time{}, nil
}

func (s *storage) newAccessTokenLocked(clientID, subject string, audience, scopes []string, family string, authTime time.Time) *accessToken {
	now := s.now()
	t := &accessToken{
		id:       randomToken(16),
		clientID: clientID,
		subject:  subject,
		audience: slices.Clone(audience),
		scopes:   slices.Clone(scopes),
		issued:   now,
		expiry:   now.Add(s.accessLifetime),
		family:   family,
		authTime: authTime,
	}
	s.accessTokens[t.id] = t
	return t
}

func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	clientID, authTime, _ := tokenInfo(req)
	ex := extrasFrom(ctx)
	aud, err := checkResources(ex.resources, grantedResources(req), req.GetAudience())
	if err != nil {
		return "", time.Time{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.newAccessTokenLocked(clientID, req.GetSubject(), aud, req.GetScopes(), "", authTime)
	t.jkt = ex.jkt
	return t.id, t.expiry, nil
}

// CreateAccessAndRefreshTokens issues a new refresh token; when
// currentRefreshToken is set it rotates it: the old token is consumed
// atomically, so of two concurrent uses exactly one succeeds.
func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	clientID, authTime, amr := tokenInfo(req)
	ex := extrasFrom(ctx)
	granted := grantedResources(req)
	aud, err := checkResources(ex.resources, granted, req.GetAudience())
	if err != nil {
		return "", "", time.Time{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	family := randomToken(12)
	if current != "" {
		old, ok := s.refreshTokens[current]
		if !ok {
			s.reuseLocked(current)
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token is invalid or was already used")
		}
		if old.clientID != clientID {
			return "", "", time.Time{}, oidc.ErrInvalidGrant()
		}
		if old.jkt != "" && old.jkt != ex.jkt {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("the refresh token is bound to another DPoP key")
		}
		s.consumeRefreshLocked(old)
		if s.now().After(old.expiry) {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token expired")
		}
		family = old.family
		amr = old.amr
		authTime = old.authTime
	}
	at := s.newAccessTokenLocked(clientID, req.GetSubject(), aud, req.GetScopes(), family, authTime)
	at.jkt = ex.jkt
	rt := &refreshToken{
		id:       randomToken(12),
		token:    randomToken(32),
		family:   family,
		clientID: clientID,
		subject:  req.GetSubject(),
		audience: slices.Clone(req.GetAudience()),
		scopes:   slices.Clone(req.GetScopes()),
		amr:      slices.Clone(amr),
		authTime: authTime,
		expiry:   s.now().Add(s.refreshLifetime),
	}
	rt.resources = slices.Clone(granted)
	if c, ok := s.client(ctx, clientID); ok && c.authMethod == oidc.AuthMethodNone {
		rt.jkt = ex.jkt // RFC 9449 §5: a public client's refresh token is bound too
	}
	s.refreshTokens[rt.token] = rt
	s.refreshByID[rt.id] = rt.token
	return at.id, rt.token, at.expiry, nil
}

func (s *storage) consumeRefreshLocked(rt *refreshToken) {
	delete(s.refreshTokens, rt.token)
	delete(s.refreshByID, rt.id)
	s.usedRefresh[rt.token] = rt.family
	// The access tokens of the previous rotation stay valid until they
	// expire; only reuse or revocation ends the whole family.
}

// reuseLocked handles a refresh token that is not (or no longer) valid.
// When it was used before and Options.RevokeFamilyOnReuse is set, every
// token of its family is revoked (RFC 9700 §4.14.2).
func (s *storage) reuseLocked(token string) {
	family, used := s.usedRefresh[token]
	if !used || !s.revokeFamily {
		return
	}
	s.revokeFamilyLocked(family)
}

func (s *storage) revokeFamilyLocked(family string) {
	for v, rt := range s.refreshTokens {
		if rt.family == family {
			delete(s.refreshTokens, v)
			delete(s.refreshByID, rt.id)
			s.usedRefresh[v] = family
		}
	}
	for id, at := range s.accessTokens {
		if at.family == family {
			delete(s.accessTokens, id)
		}
	}
}

// refreshRequest implements op.RefreshTokenRequest.
type refreshRequest struct {
	resources []string
	clientID  string
	subject   string
	audience  []string
	scopes    []string
	amr       []string
	authTime  time.Time
}

func (r *refreshRequest) GetAMR() []string             { return r.amr }
func (r *refreshRequest) GetAudience() []string        { return r.audience }
func (r *refreshRequest) GetAuthTime() time.Time       { return r.authTime }
func (r *refreshRequest) GetClientID() string          { return r.clientID }
func (r *refreshRequest) GetScopes() []string          { return r.scopes }
func (r *refreshRequest) GetSubject() string           { return r.subject }
func (r *refreshRequest) SetCurrentScopes(sc []string) { r.scopes = sc }

func (s *storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok {
		s.reuseLocked(token)
		return nil, errors.New("refresh token is invalid or was already used")
	}
	if s.now().After(rt.expiry) {
		return nil, errors.New("refresh token expired")
	}
	ex := extrasFrom(ctx)
	if rt.jkt != "" && ex.jkt != rt.jkt {
		return nil, errors.New("the refresh token is bound to another DPoP key")
	}
	if s.requireResource && len(rt.resources) > 0 && len(ex.resources) == 0 {
		return nil, oidc.ErrInvalidRequest().WithDescription("invalid_target: this grant was made for a resource; name it")
	}
	return &refreshRequest{
		resources: slices.Clone(rt.resources),
		clientID:  rt.clientID,
		subject:   rt.subject,
		audience:  slices.Clone(rt.audience),
		scopes:    slices.Clone(rt.scopes),
		amr:       slices.Clone(rt.amr),
		authTime:  rt.authTime,
	}, nil
}

func (s *storage) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, at := range s.accessTokens {
		if at.subject == userID && at.clientID == clientID {
			delete(s.accessTokens, id)
		}
	}
	for v, rt := range s.refreshTokens {
		if rt.subject == userID && rt.clientID == clientID {
			delete(s.refreshTokens, v)
			delete(s.refreshByID, rt.id)
		}
	}
	return nil
}

func (s *storage) GetRefreshTokenInfo(_ context.Context, _ string, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.subject, rt.id, nil
}

// RevokeToken revokes an access token (by id) or a refresh token (by id,
// as resolved by GetRefreshTokenInfo). Revoking a refresh token also
// revokes the access tokens of its grant (RFC 7009 §2.1). Unknown tokens are
// ignored, as RFC 7009 §2.2 requires.
func (s *storage) RevokeToken(_ context.Context, tokenOrID, _ string, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, ok := s.accessTokens[tokenOrID]; ok {
		if at.clientID != clientID {
			return oidc.ErrUnauthorizedClient().WithDescription("token was not issued to this client")
		}
		delete(s.accessTokens, tokenOrID)
		return nil
	}
	value, ok := s.refreshByID[tokenOrID]
	if !ok {
		return nil
	}
	rt := s.refreshTokens[value]
	if rt.clientID != clientID {
		return oidc.ErrUnauthorizedClient().WithDescription("token was not issued to this client")
	}
	s.revokeFamilyLocked(rt.family)
	return nil
}

// ---- keys ----

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[len(s.keys)-1], nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ks := make([]op.Key, 0, len(s.keys))
	for _, k := range s.keys {
		ks = append(ks, publicKey{k})
	}
	return ks, nil
}

func (s *storage) addSigningKey(k *signingKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, k)
}

func (s *storage) currentKeyID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[len(s.keys)-1].id
}

// ---- clients ----

func (s *storage) GetClientByClientID(ctx context.Context, clientID string) (op.Client, error) {
	c, ok := s.client(ctx, clientID)
	if !ok {
		return nil, errors.New("client not found")
	}
	return c, nil
}

func (s *storage) AuthorizeClientIDSecret(ctx context.Context, clientID, secret string) error {
	c, ok := s.client(ctx, clientID)
	if !ok || c.secret == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(c.secret)) != 1 {
		return errors.New("client authentication failed")
	}
	return nil
}

func (s *storage) GetKeyByIDAndClientID(_ context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	k, ok := s.clientKeys[clientID][keyID]
	if !ok {
		return nil, errors.New("client key not found")
	}
	return &jose.JSONWebKey{KeyID: keyID, Algorithm: string(jose.RS256), Use: "sig", Key: k}, nil
}

func (s *storage) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	// The JWT bearer grant (RFC 7523 §2.1) is not offered: no user has a key.
	return nil, oidc.ErrUnauthorizedClient().WithDescription("jwt-bearer grant not supported")
}

func (s *storage) Health(context.Context) error { return nil }

// ---- client credentials ----

// assertionKey marks a request context whose private_key_jwt client
// assertion was verified by the middleware; the value is the client id.
type assertionKey struct{}

// clientCredentialsRequest implements op.TokenRequest.
type clientCredentialsRequest struct {
	clientID string
	scopes   []string
}

func (r *clientCredentialsRequest) GetSubject() string    { return r.clientID }
func (r *clientCredentialsRequest) GetAudience() []string { return audienceFor(r.clientID, r.scopes) }
func (r *clientCredentialsRequest) GetScopes() []string   { return r.scopes }

func (s *storage) ClientCredentials(ctx context.Context, clientID, secret string) (op.Client, error) {
	verified, _ := ctx.Value(assertionKey{}).(string)
	if clientID == "" {
		clientID = verified
	}
	// A client without the grant is authenticated anyway, so that op
	// answers unauthorized_client rather than invalid_client.
	c, ok := s.client(ctx, clientID)
	if !ok {
		return nil, errors.New("client authentication failed")
	}
	if c.authMethod == oidc.AuthMethodPrivateKeyJWT {
		if verified == "" || verified != clientID || secret != "" {
			return nil, errors.New("client authentication failed")
		}
		return c, nil
	}
	if err := s.AuthorizeClientIDSecret(ctx, clientID, secret); err != nil {
		return nil, err
	}
	return c, nil
}

func (s *storage) ClientCredentialsTokenRequest(ctx context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	if clientID == "" {
		clientID, _ = ctx.Value(assertionKey{}).(string)
	}
	for _, sc := range scopes {
		if sc != ScopeAPIRead && sc != ScopeAPIWrite {
			return nil, oidc.ErrInvalidScope().WithDescription("scope not allowed for client_credentials")
		}
	}
	return &clientCredentialsRequest{clientID: clientID, scopes: slices.Clone(scopes)}, nil
}

// ---- userinfo and introspection ----

func (s *storage) userBySubject(sub string) (User, bool) {
	for _, u := range s.users {
		if u.Subject == sub {
			return u, true
		}
	}
	return User{}, false
}

func (s *storage) fillUserinfo(info *oidc.UserInfo, subject string, scopes []string) error {
	info.Subject = subject
	u, ok := s.userBySubject(subject)
	if !ok {
		return nil // a service: no claims beyond sub
	}
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeProfile:
			info.PreferredUsername = u.Username
			info.Name = u.Name
		case oidc.ScopeEmail:
			info.Email = u.Email
			info.EmailVerified = oidc.Bool(true)
		}
	}
	return nil
}

func (s *storage) SetUserinfoFromScopes(_ context.Context, info *oidc.UserInfo, userID, _ string, scopes []string) error {
	return s.fillUserinfo(info, userID, scopes)
}

func (s *storage) liveAccessToken(id string) (accessToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.accessTokens[id]
	if !ok {
		return accessToken{}, errors.New("token is invalid")
	}
	if !s.now().Before(at.expiry) {
		delete(s.accessTokens, id)
		return accessToken{}, errors.New("token expired")
	}
	return *at, nil
}

func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	at, err := s.liveAccessToken(tokenID)
	if err != nil {
		return err
	}
	if at.subject != subject {
		return errors.New("token is invalid")
	}
	if !slices.Contains(at.scopes, oidc.ScopeOpenID) {
		return errors.New("token lacks the openid scope")
	}
	return s.fillUserinfo(info, at.subject, at.scopes)
}

// SetIntrospectionFromToken lets ClientResource introspect any token and
// any other client only its own tokens.
func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	at, err := s.liveAccessToken(tokenID)
	if err != nil {
		return err
	}
	if at.subject != subject {
		return errors.New("token is invalid")
	}
	if clientID != ClientResource && clientID != at.clientID {
		return errors.New("token not visible to this client")
	}
	resp.Scope = at.scopes
	resp.ClientID = at.clientID
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(at.expiry)
	resp.IssuedAt = oidc.FromTime(at.issued)
	resp.Subject = at.subject
	resp.Audience = at.audience
	resp.JWTID = at.id
	if at.jkt != "" {
		resp.TokenType = "DPoP"
		resp.Claims = map[string]any{"cnf": map[string]string{"jkt": at.jkt}}
	}
	if u, ok := s.userBySubject(at.subject); ok {
		resp.Username = u.Username
	}
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(_ context.Context, _, _ string, scopes []string) (map[string]any, error) {
	// RFC 9068 §2.2.3: the granted scopes travel in the JWT access token.
	var granted []string
	for _, sc := range scopes {
		if sc == ScopeAPIRead || sc == ScopeAPIWrite {
			granted = append(granted, sc)
		}
	}
	if len(granted) == 0 {
		return nil, nil
	}
	return map[string]any{"scope": strings.Join(granted, " ")}, nil
}

// ---- device authorization ----

func (s *storage) StoreDeviceAuthorization(ctx context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	c, ok := s.client(ctx, clientID)
	if !ok || !c.hasGrant(oidc.GrantTypeDeviceCode) {
		return errors.New("client may not use the device grant")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.userCodes[userCode]; dup {
		return op.ErrDuplicateUserCode
	}
	s.devices[deviceCode] = &deviceEntry{
		userCode: userCode,
		state: op.DeviceAuthorizationState{
			ClientID: clientID,
			Audience: audienceFor(clientID, scopes),
			Scopes:   slices.Clone(scopes),
			Expires:  expires,
		},
	}
	s.userCodes[userCode] = deviceCode
	return nil
}

// GetDeviceAuthorizatonState returns a copy of the state; once it reports
// Done, the device code is consumed, so it yields tokens only once.
func (s *storage) GetDeviceAuthorizatonState(ctx context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.devices[deviceCode]
	if !ok || e.state.ClientID != clientID {
		return nil, errors.New("device code not found")
	}
	st := e.state
	st.Scopes = slices.Clone(e.state.Scopes)
	st.Audience = slices.Clone(e.state.Audience)
	st.AMR = slices.Clone(e.state.AMR)
	if st.Done || st.Denied {
		delete(s.devices, deviceCode)
		delete(s.userCodes, e.userCode)
	}
	return &st, nil
}

// completeDevice approves (or denies) the pending device authorization
// with the given user code for username.
func (s *storage) completeDevice(userCode, username, password string, approve bool) error {
	u, ok := s.users[username]
	if !ok || subtle.ConstantTimeCompare([]byte(password), []byte(Password)) != 1 {
		return errors.New("wrong username or password")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.devices[s.userCodes[userCode]]
	if !ok || s.now().After(e.state.Expires) {
		return errors.New("unknown or expired user code")
	}
	if e.state.Done || e.state.Denied {
		return errors.New("user code already used")
	}
	if !approve {
		e.state.Denied = true
		return nil
	}
	e.state.Done = true
	e.state.Subject = u.Subject
	e.state.AMR = []string{"pwd"}
	e.state.AuthTime = s.now()
	return nil
}

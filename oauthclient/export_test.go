package oauthclient

// The precise causes the external tests of this package tell apart.
var (
	ErrIssuedTokenType = errIssuedTokenType
	TokenTypeIDJAG     = tokenTypeIDJAG

	TokenTypeAccessToken = tokenTypeAccessToken
	TokenTypeIDToken     = tokenTypeIDToken
	TokenTypeJWT         = tokenTypeJWT
)

// Package hook lets the subpackages of oauthclient reach what oauthclient
// keeps unexported, without making it part of oauthclient's API. The
// functions are set by oauthclient's init; a subpackage imports oauthclient
// for its types, so they are always set before use.
package hook

import "github.com/oauthsafe/oauthsafe/tokenstore"

// ClientCredentials returns the client-credentials token source of c, an
// *oauthclient.Client, for the scopes (nil: the client's) and RFC 8707
// resource indicators given.
var ClientCredentials func(c any, scopes, resource []string) *tokenstore.Source

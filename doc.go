// Package oauthsafe is the root of the oauthsafe SDK, the client side of
// OAuth 2.0 and OpenID Connect where the secure way is the easy way. It
// holds the one error every package shares, ErrConfig; the work is done
// by the packages below it. Where to start:
//
//   - A web backend calling an API for its users: callback.New for the
//     login and the redirect endpoint, oauthclient's Client.UserPool over
//     a tokenstore/sqlstore vault, apiclient.NewTransport for the calls.
//   - A backend service with no user: oauthclient's Client.ClientCredentials,
//     then apiclient.New.
//   - A workload with no stored secret (a platform token, enterprise SSO):
//     Client.JWTBearer with an assertion.File or Func;
//     Client.TokenExchange; oauthclient.Client.IDJAG for enterprise-managed
//     authorization.
//   - A desktop or CLI tool: callback.Loopback (or Client.DeviceAuth), then
//     Client.TokenSource with a tokenstore/keyring Store.
//   - An agent or MCP client that knows only a resource's URL:
//     resourceclient.New.
//   - Checking ID or access tokens: package validate.
//
// docs/architecture.md in the repository lists the security invariants
// (S1–S31) the package docs and tests cite.
package oauthsafe

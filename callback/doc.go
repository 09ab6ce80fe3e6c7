// Package callback is the browser side of the OAuth 2.0 authorization-code
// flow for web applications: it starts logins and serves the redirect
// endpoint as an [http.Handler].
//
// Where to start: a web backend makes one [Handler] with [New] and mounts
// [Handler.Login] and the Handler itself; a desktop or CLI tool uses
// [Loopback]. A service has nothing to do here. Names like S15 in the docs
// are the security invariants of docs/architecture.md.
//
// # Wiring
//
//	h, err := callback.New(callback.Config{
//		Client: client,           // an *oauthclient.Client whose RedirectURL is https://app.example/callback
//		Keys:   [][]byte{key},    // 32 bytes from crypto/rand, shared by every replica
//		OnLogin: func(w http.ResponseWriter, r *http.Request, t *oauthclient.Tokens, returnTo string) error {
//			// create the application session: a random session id in an
//			// HttpOnly, Secure cookie, the tokens server-side
//			return sessions.Create(w, t)
//		},
//	})
//	mux.Handle("/login", h.Login())   // or call h.Start from your own handler
//	mux.Handle("/callback", h)        // the path of the registered redirect URI
//
// See the package example for a complete program.
//
// # Guarantees
//
//   - Each pending flow (state, PKCE verifier, nonce, issuer, expiry and the
//     return-to path) lives in its own cookie, named from a hash of its
//     state, so parallel logins in several tabs never overwrite each other.
//     The cookie is sealed with AES-256-GCM under Config.Keys with its name
//     as additional data: it cannot be read, altered, forged or moved to
//     another flow. Attributes: HttpOnly; Secure; SameSite=Lax;
//     Path=<callback path>; Max-Age of at most 10 minutes. Any replica with
//     the same Keys completes any flow; a key list allows rotation.
//   - Alternatively (Config.PendingStore) the flow stays on the server and the
//     cookie holds only a random value that is needed, with the state, to
//     take it.
//   - The state is bound to the browser: a callback whose state does not
//     open a flow of this browser makes no token request and touches no
//     flow, so a forged "?error=access_denied" cannot abort a real login.
//     A flow is deleted as soon as its state matched, success or not, so a
//     replayed callback URL finds nothing.
//   - Callback parameters are parsed strictly: repeated parameters,
//     oversized values and code together with error are refused before any
//     lookup.
//   - The order of checks is that of oauthclient.Client.Exchange: state
//     (constant time) and expiry, the error parameter, iss (RFC 9207), and
//     only then the code exchange and the ID token.
//   - A completed login answers 303 See Other to a same-origin path with no
//     code or state, so neither stays in the address bar or history nor
//     leaks through Referer. Return-to paths are validated when the login
//     starts and again when it ends: "//host", "/\host", "https:host",
//     control characters, dot segments and their percent-encoded forms are
//     refused.
//   - Every response carries exactly Cache-Control: no-store, Pragma:
//     no-cache, Referrer-Policy: no-referrer, Content-Security-Policy:
//     default-src 'none', X-Content-Type-Options: nosniff and
//     X-Frame-Options: DENY. Error pages are plain HTML, load nothing,
//     escape the server's error_description and never show a code or state.
//
// # Limits
//
// A callback replayed together with a stolen copy of its sealed cookie
// reaches the token endpoint, where the single use of the code stops it;
// Config.PendingStore takes flows atomically and stops it before. The cookies are
// SameSite=Lax, which browsers do not send on a cross-site POST: a server
// answering with response_mode=form_post needs the flows in a PendingStore bound
// otherwise, or a same-site callback. oauthclient.Client.Start never asks
// for form_post; the Handler accepts it for servers that use it by default.
//
// # Errors
//
// Start returns, and Config.OnError receives, errors that match
// [ErrRefused] with errors.Is (a malformed callback, a state that opens no
// pending login of this browser, a cookie that does not open, a refused
// return-to path: the message says which), the oauthclient errors
// (oauthclient.ErrFlowExpired, oauthclient.ErrIssuerMismatch,
// *oauthclient.AuthError...), or the error Config.OnLogin returned
// (wrapped). [Loopback.Login] adds [ErrTimeout], and an error matching oauthsafe.ErrConfig for a
// Listen address that is not a loopback IP literal with a port. None
// contains a code, state, token or cookie value.
package callback

// Package engine is the token lifecycle engine behind oauthclient's
// TokenSource and UserPool: a Source serves an access token from memory and
// refreshes it in one Store transaction (read, mark, fetch, write the
// outcome, classify: refresh.go and the files named for each step); a Pool
// keeps one Source per user. Its users are oauthclient (which hands
// Sources out wrapped) and the tests; tokenstore's doc states its
// guarantees to users.
//
// # The engine
//
// A [Source] serves an access token from memory (a lock-free, allocation-free
// hot path), refreshes it ahead of expiry with one flight, and backs off
// exponentially with jitter after a temporary failure, also for callers that
// wait. The same engine serves user tokens (a refresh token in a tokenstore.Store) and
// client-credentials tokens (no Store); oauthclient builds both
// (Client.TokenSource, Client.ClientCredentials). TokenContext honours the
// caller's context. Expiry is compared on the wall clock.
//
// # Guarantees
//
//   - Access tokens live only in memory, inside a Source. Only the record
//     (refresh token, subject, granted scopes, issuer, client, generation,
//     and the DPoP key the refresh token is bound to) is written
//     to a Store, as versioned JSON: the key is sealed with the refresh
//     token by the same Store and replaced in the same transaction. A record of an earlier
//     version is refused with ErrLoginRequired (log in again), never misread.
//   - Every refresh is one Store.Update transaction: the record is read
//     inside it, the token endpoint called, and the outcome written before
//     it ends, so one refresh token is sent once across every goroutine,
//     process and replica sharing the Store.
//   - A rotated refresh token reaches the engine (as soon as a 200 response yields one) as soon
//     as a 200 response yields one and is written inside the transaction
//     whatever the later checks of the response decide. If the Store fails,
//     the engine keeps it in memory, uses it next, and writes it when the
//     Store works again; the spent token is never sent again.
//   - invalid_grant deletes the record ([ErrLoginRequired]); any other
//     failure keeps it ([*TemporaryError]).
//   - Refresh tokens go to the OS keyring (package tokenstore/keyring) or to
//     an [EncryptedFile] the user chose explicitly. There is never a silent
//     fallback: a missing keyring is [ErrUnavailable].
//
// # Under faults
//
// Before each token request the engine marks the record ("a refresh with
// this token may be at the server") and clears the mark with the outcome.
// What each fault costs:
//
//   - The server answered (a token, a 5xx or 429, an OAuth error): nothing
//     is lost. The mark is cleared with the outcome; if that write fails
//     (the store down, the lease lost), the outcome is kept in the process
//     and written by its next refresh, or the source's Close or the pool's Drain.
//   - The store fails before the request: nothing was sent; a
//     [*TemporaryError]. A mark whose write committed but whose
//     acknowledgement was lost is read back: it lets the request go; one
//     that cannot be read back stops it, and this process clears it next.
//   - A holder dies (or loses the store for longer than its lease) after
//     its mark and before its request, or its request fails on the way
//     with no answer (a reset connection, a timeout): the server may or may
//     not have rotated. The stored token is never sent again blindly. With
//     SourceConfig.ResolveMarkersByIntrospection the next holder asks the
//     provider once the request has surely ended (for a lease store: when
//     the dead holder's lease lapses, then 5 s; meanwhile a
//     [*TemporaryError]): a token still active is refreshed and the user
//     keeps working. Without it, [ErrRotationLost] (the user logs in
//     again), or a resend within SourceConfig.ReuseGrace.
//   - The one window no client can close: a holder killed after the server
//     rotated and before the new token was written. The new token is gone
//     with it; the next holder reports [ErrRotationLost] (introspection
//     finds the stored token inactive) and never presents the spent token,
//     so the provider's reuse detection does not revoke the grant.
//
// An access token's expiry and refresh margins count from the time before
// its request was sent, so a slow answer or a slow save never makes it look
// longer-lived than the server made it.
package engine

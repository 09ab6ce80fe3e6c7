// Package tokenstore keeps OAuth tokens where they belong and refreshes them
// without losing or re-spending a refresh token.
//
// # Guarantees
//
//   - Access tokens live only in memory, inside a [Source]. Only refresh
//     tokens are written to a [Store], as a small versioned record.
//   - Refresh tokens go to the OS keyring ([Keyring]) or to an
//     [EncryptedFile] the user chose explicitly. There is never a silent
//     fallback: a missing keyring is [ErrUnavailable].
//   - A keyring call that hangs or fails ends in [ErrUnavailable] within the
//     configured timeout, never a hang.
//   - Values too large for one keyring entry are split into chunks, and a
//     reader never sees a mix of two writes (the manifest names a generation
//     and its SHA-256).
//   - A [Source] performs at most one refresh per key at a time, within the
//     process (single flight) and across processes ([Lock]). After taking the
//     lock it re-reads the store, so a refresh token rotated by another
//     process is picked up and a given refresh token is never sent twice by
//     cooperating processes.
//   - A rotated refresh token is persisted before the new access token is
//     released. invalid_grant deletes the stored refresh token
//     ([ErrLoginRequired]); any other failure keeps it and backs off
//     ([*TemporaryError]).
//
// # Keys
//
// [Key] and [ProfileKey] derive store keys from the issuer, client id and
// subject (or profile) with SHA-256 over a length-prefixed encoding, so a
// key reveals nothing and two accounts never collide.
package tokenstore

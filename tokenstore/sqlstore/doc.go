// Package sqlstore is the server-side vault: a [tokenstore.Store] in one SQL
// table through database/sql, for SQLite (one local file, the embedded
// default) and PostgreSQL (a fleet of replicas). The caller opens the
// database with the driver of its choice (modernc.org/sqlite, pgx's
// stdlib); this package imports none. [New] asks the database which of the
// two it is (SELECT version(), which PostgreSQL answers "PostgreSQL ...",
// then SELECT sqlite_version()) and refuses any other database.
//
// Where to start: a web backend opens it with [New] and hands it to
// oauthclient's UserPool. Names like S26 in the docs are the security
// invariants of docs/architecture.md.
//
// # Use
//
// A web backend opens the vault once and serves every user through a
// bounded pool of per-user engines (oauthclient's Client.UserPool):
//
//	db, _ := sql.Open("pgx", dsn) // or "sqlite" with "file:vault.db?_pragma=busy_timeout(5000)"
//	keys, err := secret.FromEnv("APP_VAULT_KEYS") // "k1:<base64 of 32 random bytes>", or secret.FromFile (0600)
//	vault, err := sqlstore.New(ctx, sqlstore.Config{DB: db, Keys: keys}) // PostgreSQL or SQLite: New asks the database
//	users, err := client.UserPool(oauthclient.TokenSourceConfig{Store: vault})
//
// After a login, client.TokenSource with Store: vault writes the user's
// record sealed, and users.Add pools the engine; users.Source gets a user's
// engine on any replica (resumed from the vault); users.End revokes and
// deletes. Each refresh of a user is one Update on this Store.
//
// # Guarantees
//
//   - Every record is sealed with AES-256-GCM before it reaches the
//     database. The key list comes from the caller (Config.Keys, a
//     secret.Value loaded from the environment, a 0600 file or a KMS's
//     answer) and is never written to the
//     database. The additional data binds each value to its table, its row
//     (the key hash) and the row's version, so a value copied into another
//     row, or into the same row at another version, does not open.
//   - Rollback: a Store refuses (ErrRollback) a row whose version is lower
//     than one it has already read or written for the same key, such as an
//     older (version, key id, sealed) row written back from a backup. The
//     versions of a key only grow, across a deletion and a new login too
//     (a new row starts at the database clock). A process that never saw
//     the newer version cannot tell; it accepts the older one.
//   - A value that does not open gives an [*OpenError] naming the key id,
//     never a deletion or a silent logout; the record stays as it is.
//   - [Store.Update] gives one holder at a time exclusive use of one key's
//     record, across goroutines, processes and replicas, through a lease
//     (below). [tokenstore.Tx.Put] is durable when it returns nil, and a
//     holder whose lease lapsed or was taken over cannot write: its Put
//     returns an error matching [tokenstore.ErrLocked] and the other
//     holder's record is kept.
//   - A database that is unreachable, restarting or too slow for ctx gives
//     an error matching [tokenstore.ErrUnavailable], which the engine treats
//     as temporary; nothing stored is lost and the next call recovers.
//
// # Exclusion: a lease, not a row lock
//
// Update takes a lease on the key's row with one conditional UPDATE in
// autocommit: it sets lease_owner (this replica's Owner plus a random
// suffix) and lease_until (database clock + LeaseTTL) where the lease is
// free or lapsed, and returns the row. While fn runs, the lease is renewed
// every LeaseTTL/3; each Put or Delete is another autocommit UPDATE that
// matches only while lease_owner is this holder, lease_until has not
// passed, and the version is the one read. At the end the lease is
// released. Others waiting poll with backoff and jitter until LockTimeout
// (then [tokenstore.ErrLocked]) or until their ctx ends.
//
// A lease rather than SELECT ... FOR UPDATE in a transaction held across
// the token request, because it holds no session state and no transaction
// open across a network call: it works behind a connection pooler in
// transaction mode (PgBouncer), it does not pin a connection per waiting
// user, a write is durable the moment Put returns (not at a later commit
// that could still fail), and SQLite, which has no row locks, gets the same
// semantics. Times come from the database's clock, so replicas' clocks
// need not agree. A replica killed while holding a lease blocks that one
// user's key for at most LeaseTTL; if a holder loses its lease (it stalled
// longer than LeaseTTL), its context is cancelled and its writes fail.
//
// What the kill costs the user depends on where the engine was (see
// tokenstore's "Under faults"): before it marked the record, nothing;
// after its mark, the next holder finds the mark once the lease lapses.
// With ResolveMarkersByIntrospection (oauthclient's TokenSourceConfig) it
// asks the provider about the stored token 5 s after the dead holder's
// request surely ended (within two thirds of the lease, so about LeaseTTL
// + 5 s after the kill; refreshes of that user fail with a
// *tokenstore.TemporaryError meanwhile): a token the request never reached
// is refreshed, and the user keeps working. Without it, and when the
// provider had rotated the token before the kill (the one window no client
// can close), the next holder reports an error matching
// tokenstore.ErrLoginRequired: that user logs in again, and the spent
// token is never presented.
//
// The Tx has the LeaseDeadline method of the Store contract (see
// tokenstore.Tx): the engine ends its token request before the lease
// could lapse, so no other replica reads the
// record while a request with its refresh token is in flight. A write
// whose answer was lost (the UPDATE may have committed) is settled by
// reading the row back under the lease before the Tx is used again: at
// the written version it landed and Put returns nil; otherwise the write
// failed, or, while the row cannot be read, the Tx fails with an error
// matching [tokenstore.ErrUnavailable]. A write that
// fails because the database is unreachable may be retried while the lease
// lives (the engine does, with backoff): fn's context is cancelled only
// when the lease is surely lost, that is when its local deadline passed
// with no renewal landing, or a renewal found it taken over. A waiter
// whose row is dropped meanwhile (the holder deleted the record) takes the
// lease at once and sees no record, rather than waiting out LockTimeout.
//
// # Schema
//
// New creates the table (name and PostgreSQL schema chosen by the caller,
// default "oauthsafe_tokens") if needed, and a one-row table
// <table>_schema holding the layout version (now 1). A table of a newer
// version is refused (an error matching ErrConfig, package oauthsafe);
// older ones are migrated forward.
// On PostgreSQL migration runs in one transaction under an advisory lock.
//
//	key_hash    TEXT PRIMARY KEY  hex SHA-256 of the store key (which is itself a hash of issuer, client, subject)
//	version     BIGINT            row version (the record's generation): starts at the database
//	                              clock in ms × 1000, +1 on every write; part of the additional data
//	key_id      TEXT              id of the key that sealed the value ('' when empty)
//	sealed      BYTEA / BLOB      0x01 || 12-byte nonce || AES-256-GCM ciphertext and tag; NULL when empty
//	updated_at  BIGINT            last write, milliseconds since 1970 (database clock)
//	lease_owner TEXT              holder of the lease ('' when free): Owner + "/" + random
//	lease_until BIGINT            lease expiry, milliseconds since 1970 (database clock)
//
// Everything but sealed is in clear, for operations: which rows exist, when
// they changed, who holds a lease and under which key they are sealed.
//
// # What a dump reveals
//
// A dump, a backup or the database's logs show the columns above: how many
// users have a record, when each last refreshed, which key id sealed it and
// the approximate size of each record. They show no refresh token, no
// access token (those never reach a Store), no subject, issuer or client
// id (only hashes), and nothing that opens without the key list. Restoring
// an old backup brings back older refresh tokens, which a rotating server
// has already spent: those users log in again.
//
// # Key rotation
//
// Generate a key ([NewSealingKey]), put it first in the list and keep the old ones
// after it; restart the replicas (New reads the keys once), then run
// [Store.Reseal], which rewrites every row sealed under another key. When it
// returns no error, remove the old keys. A row whose key was removed too
// early gives an [*OpenError] with Missing set; put the key back and
// Reseal again.
//
// # Sizing
//
// One row per user: about 150 bytes of columns and index plus the sealed
// record (29 bytes over the record, a refresh-token record is typically
// 200-600 bytes), so under 1 KiB per user; 100,000 users take about 100 MB
// with indexes. A refresh costs five short statements (take the lease,
// renew only if slow, write, release) plus an INSERT for a new user. With
// SQLite, open the database with a busy_timeout (for modernc.org/sqlite:
// "file:vault.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)");
// SQLite serialises writers across the processes of one machine. With a
// pooler in transaction mode, use a driver mode without named prepared
// statements (pgx: default_query_exec_mode=exec or simple_protocol).
package sqlstore

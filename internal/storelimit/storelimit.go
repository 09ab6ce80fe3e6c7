// Package storelimit holds the one bound on the size of a stored record,
// shared by every Store of the module (tokenstore's Memory and
// EncryptedFile, tokenstore/keyring, tokenstore/sqlstore): the Store
// contract promises it in words ("at most 1 MiB").
package storelimit

// MaxValueSize is the largest value any Store of the module accepts
// (1 MiB); a larger value gives tokenstore.ErrTooLarge before anything is
// written.
const MaxValueSize = 1 << 20

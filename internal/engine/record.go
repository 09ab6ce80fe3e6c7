package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// Record is what a Source keeps in a Store for one login: the refresh token,
// what it was granted for, and the DPoP key it is bound to. Every Put
// writes a versioned JSON object ({"v":2,...}); see SaveRecord and
// LoadRecord. The whole record is one Store value, so the key is sealed
// (keyring, EncryptedFile, vault) and replaced together with the refresh
// token, in the same transaction.
//
// Printing a Record with any fmt verb, slog or JSON shows neither the
// refresh token nor the key.
// A Record is a plain value: not safe for concurrent modification.
type Record struct {
	// RefreshToken is the current refresh token. Required.
	RefreshToken string
	// Subject is the sub of the login's ID token; "" for a login without
	// OpenID Connect. Every refreshed ID token must name it.
	Subject string
	// Scopes are the scopes granted, as of the last token response.
	Scopes []string
	// Issuer and ClientID name the authorization server and client the
	// refresh token belongs to.
	Issuer, ClientID string
	// Generation counts the writes of this record by Sources (0 for a
	// fresh login), so a reader can tell two versions apart without
	// comparing tokens.
	Generation uint64
	// DPoPKey is the private key the refresh token (and its access
	// tokens) are bound to by DPoP (RFC 9449); the zero PrivateKey for a
	// login without DPoP. A Source keeps it across rotations, and a
	// FetchFunc that proves a refresh with a new key hands it over with
	// Refresh.SetDPoPKey.
	DPoPKey PrivateKey
	// Resources are the RFC 8707 resource indicators the login was granted
	// for; a Source resumed from the store sends them on every refresh
	// unless its configuration names others. nil: none.
	Resources []string

	// pending is set (Unix milliseconds, when the refresh began) while a
	// refresh with RefreshToken may be at the server and its outcome is
	// not yet written: see ErrRotationLost. 0 means none. pendingUntil is
	// the time by which that request surely ended at the client (its
	// deadline, or when it failed); 0 in a marker of an earlier version.
	pending, pendingUntil int64
}

// wireRecord is the stored form. Version 1 ({"v":1,"refresh_token":...})
// had no subject, scopes, issuer or client; it is refused (ErrOldRecord).
type wireRecord struct {
	V            int             `json:"v"`
	RefreshToken string          `json:"refresh_token"`
	Subject      string          `json:"sub,omitempty"`
	Scopes       []string        `json:"scope,omitempty"`
	Issuer       string          `json:"iss"`
	ClientID     string          `json:"client_id"`
	Generation   uint64          `json:"gen"`
	DPoP         json.RawMessage `json:"dpop,omitempty"` // wireKey
	Resources    []string        `json:"resource,omitempty"`
	Pending      int64           `json:"pending,omitempty"`
	PendingUntil int64           `json:"pending_until,omitempty"`
}

const (
	recordVersion = 2
	maxRecordSize = 64 << 10
)

// ErrOldRecord means the stored record was written by an earlier version of
// this package. Such a record does not name the login's subject, so it
// cannot be refreshed safely: log in again. It matches ErrLoginRequired.
var ErrOldRecord = fmt.Errorf("%w: the stored record was written by an older version of oauthsafe; log in again", tokenstore.ErrLoginRequired)

func encodeRecord(r *Record) ([]byte, error) {
	if r == nil {
		return nil, cfgerr.New("tokenstore", "nil Record")
	}
	if err := checkRefreshToken(r.RefreshToken); err != nil {
		return nil, err
	}
	for _, s := range r.Scopes {
		if !validScope(s) {
			return nil, errors.New("tokenstore: a scope has characters outside RFC 6749 NQCHAR")
		}
	}
	key, err := encodeKey(r.DPoPKey)
	if err != nil {
		return nil, err
	}
	return json.Marshal(wireRecord{
		V: recordVersion, RefreshToken: r.RefreshToken, Subject: r.Subject,
		Scopes: r.Scopes, Issuer: r.Issuer, ClientID: r.ClientID,
		Generation: r.Generation, DPoP: key, Resources: r.Resources, Pending: r.pending, PendingUntil: r.pendingUntil,
	})
}

// decodeRecord parses a stored record: ErrOldRecord for a version 1
// record, ErrCorrupt for any defect.
func decodeRecord(b []byte) (*Record, error) {
	if len(b) > maxRecordSize {
		return nil, fmt.Errorf("%w: record too large", tokenstore.ErrCorrupt)
	}
	var head struct {
		V json.RawMessage `json:"v"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("%w: record is not valid JSON", tokenstore.ErrCorrupt)
	}
	switch string(head.V) {
	case "2":
	case "1":
		return nil, ErrOldRecord
	default:
		return nil, fmt.Errorf("%w: unknown record version", tokenstore.ErrCorrupt)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w wireRecord
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("%w: record is not valid JSON", tokenstore.ErrCorrupt)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after record", tokenstore.ErrCorrupt)
	}
	if err := checkRefreshToken(w.RefreshToken); err != nil {
		return nil, fmt.Errorf("%w: %w", tokenstore.ErrCorrupt, err)
	}
	for _, s := range w.Scopes {
		if !validScope(s) {
			return nil, fmt.Errorf("%w: bad scope", tokenstore.ErrCorrupt)
		}
	}
	for _, r := range w.Resources {
		if !validScope(r) {
			return nil, fmt.Errorf("%w: bad resource", tokenstore.ErrCorrupt)
		}
	}
	key, err := decodeKey(w.DPoP)
	if err != nil {
		return nil, err
	}
	return &Record{
		RefreshToken: w.RefreshToken, Subject: w.Subject, Scopes: w.Scopes,
		Issuer: w.Issuer, ClientID: w.ClientID, Generation: w.Generation, DPoPKey: key,
		Resources: w.Resources, pending: w.Pending, pendingUntil: w.PendingUntil,
	}, nil
}

// checkRefreshToken accepts RFC 6749 VSCHAR strings (%x20-7E) of bounded
// length. The error never contains the token.
func checkRefreshToken(rt string) error {
	if rt == "" || len(rt) > maxRecordSize/2 {
		return errors.New("tokenstore: refresh token is empty or too long")
	}
	for i := 0; i < len(rt); i++ {
		if rt[i] < 0x20 || rt[i] > 0x7e {
			return errors.New("tokenstore: refresh token has characters outside RFC 6749 VSCHAR")
		}
	}
	return nil
}

// validScope reports whether s is a non-empty RFC 6749 scope-token (NQCHAR).
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// clone returns a deep copy.
func (r *Record) clone() *Record {
	if r == nil {
		return nil
	}
	c := *r
	c.Scopes = slices.Clone(r.Scopes)
	c.Resources = slices.Clone(r.Resources)
	return &c
}

// Public returns the copy of r that users see (tokenstore.Record): no
// DPoP key, no marker.
func (r *Record) Public() *tokenstore.Record {
	if r == nil {
		return nil
	}
	return &tokenstore.Record{
		RefreshToken: r.RefreshToken, Subject: r.Subject, Scopes: slices.Clone(r.Scopes),
		Issuer: r.Issuer, ClientID: r.ClientID, Generation: r.Generation,
		Resources: slices.Clone(r.Resources), DPoP: !r.DPoPKey.IsZero(),
	}
}

// SaveRecord writes rec for key in one Store.Update, replacing any record
// (a new login). Use it after a login, before creating a Source for the same
// key. It is safe for concurrent use if store is.
func SaveRecord(ctx context.Context, store tokenstore.Store, key string, rec *Record) error {
	if store == nil || key == "" {
		return cfgerr.New("tokenstore", "SaveRecord needs a Store and a key")
	}
	b, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	return store.Update(ctx, key, func(ctx context.Context, tx tokenstore.Tx) error { return tx.Put(ctx, b) })
}

// LoadRecord reads the record for key without taking the store's lock, for
// status displays (never to decide a refresh). A missing record is
// ErrNotFound, one from an older version ErrOldRecord (matching
// ErrLoginRequired), a malformed one ErrCorrupt. It is safe for concurrent
// use if store is.
func LoadRecord(ctx context.Context, store tokenstore.Store, key string) (*Record, error) {
	if store == nil || key == "" {
		return nil, cfgerr.New("tokenstore", "LoadRecord needs a Store and a key")
	}
	b, err := store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return decodeRecord(b)
}

// redact prints r as users see a record (tokenstore.Record's Format): no
// refresh token, and the DPoP key only as present.
func (r Record) redact() string { return fmt.Sprint(*r.Public()) }

// Format implements fmt.Formatter; no verb shows the refresh token.
func (r Record) Format(f fmt.State, verb rune) { io.WriteString(f, r.redact()) }

// MarshalJSON implements json.Marshaler; it never shows the refresh token.
func (r Record) MarshalJSON() ([]byte, error) { return json.Marshal(r.redact()) }

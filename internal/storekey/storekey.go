// Package storekey derives the store keys of records: a hex SHA-256 over a
// length-prefixed encoding of a domain and the parts, so that a key
// reveals none of the parts and distinct domains or parts never share a
// key. tokenstore.Key and tokenstore.ProfileKey are the public ones; the
// resource-first client's are here.
package storekey

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// Resource is the store key of the refresh token a resource-first client
// (package resourceclient) got for resource at issuer with clientID.
func Resource(resource, issuer, clientID string) string {
	return Derive("oauthsafe/tokenstore/resource/v1", resource, issuer, clientID)
}

// Registration is the store key of a client registered dynamically (RFC
// 7591) at issuer for the redirect URI redirect: one registration per
// issuer and redirect URI, kept as sealed as a refresh token.
func Registration(issuer, redirect string) string {
	return Derive("oauthsafe/tokenstore/registration/v1", issuer, redirect)
}

// Derive returns the key of parts in domain. It is a pure function, safe
// for concurrent use.
func Derive(domain string, parts ...string) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range append([]string{domain}, parts...) {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

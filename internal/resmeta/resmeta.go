// Package resmeta holds the outcomes of protected resource discovery
// (RFC 9728) that apiclient.Discover returns wrapped in its public errors,
// and that resourceclient needs to tell apart: a resource that publishes
// no metadata (resourceclient then falls back on the resource's origin)
// and metadata that names another resource. They are plain sentinels,
// matched with errors.Is.
package resmeta

import "errors"

var (
	// ErrNotPublished: the resource publishes no metadata (no
	// resource_metadata in its challenge, and 404 at every well-known
	// URL). apiclient's error matches apiclient.ErrDiscovery too.
	ErrNotPublished = errors.New("the resource publishes no protected resource metadata")
	// ErrResourceMismatch: the metadata names another resource than the
	// one it was fetched for (RFC 9728 §3.3); no issuer it names is used.
	// apiclient's error matches strictnet.ErrPolicy too.
	ErrResourceMismatch = errors.New("the resource metadata names another resource than the one asked")
)

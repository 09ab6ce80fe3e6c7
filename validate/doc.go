// Package validate checks ID tokens and access tokens before anything uses them.
//
// It is filled in by the validate work; this file only fixes the API that
// oauthclient calls.
package validate

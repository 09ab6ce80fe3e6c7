//go:build !unix

package oauthclient

import "os"

// fileOwner reports false: this platform has no Unix owners, so
// SecretFromFile refuses every file.
func fileOwner(os.FileInfo) (int, bool) { return 0, false }

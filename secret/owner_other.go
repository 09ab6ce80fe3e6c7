//go:build !unix

package secret

import "os"

// fileOwner reports false: this platform has no Unix owners, so
// FromFile refuses every file.
func fileOwner(os.FileInfo) (int, bool) { return 0, false }

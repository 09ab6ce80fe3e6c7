//go:build !unix

package filecheck

import "os"

// openFlags opens for reading.
const openFlags = os.O_RDONLY

// fileOwner reports false: this platform has no Unix owners, so
// Secret files are refused.
func fileOwner(os.FileInfo) (int, bool) { return 0, false }

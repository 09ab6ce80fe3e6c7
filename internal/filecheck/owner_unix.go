//go:build unix

package filecheck

import (
	"os"
	"syscall"
)

// openFlags opens for reading without blocking on a FIFO.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK

// fileOwner returns the owner uid of fi.
func fileOwner(fi os.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

//go:build !linux && !darwin && !freebsd

package main

import "net"

// peerUID: this platform has no peer-credential check we trust, so the
// agent refuses every connection and `token` refreshes directly.
func peerUID(c *net.UnixConn) (int, error) { return -1, errAgentUnsupported }

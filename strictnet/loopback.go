package strictnet

import (
	"context"
	"net"

	"github.com/oauthsafe/oauthsafe/internal/netrule"
)

// lookupIPAddr resolves a loopback host name for dialLoopback; a test
// replaces it to make a name resolve elsewhere.
var lookupIPAddr = net.DefaultResolver.LookupIPAddr

// dialLoopback opens the connection of a plain http call
// (AllowLoopbackHTTP): the host must be localhost, 127.0.0.0/8 or ::1;
// a name is resolved here and refused when any of its addresses is not
// loopback, and the caller's dialer is given a loopback IP literal only.
// A connection whose peer is not a loopback address is closed.
func (in *inner) dialLoopback(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if !netrule.LoopbackHost(host) {
		return nil, in.refuse("plain http is allowed to localhost, 127.0.0.0/8 and ::1 only")
	}
	ips := []net.IP{net.ParseIP(host)}
	if ips[0] == nil {
		addrs, err := lookupIPAddr(ctx, host)
		if err != nil {
			return nil, err
		}
		if len(addrs) == 0 {
			return nil, in.refuse("plain http: " + host + " resolves to no address")
		}
		ips = ips[:0]
		for _, a := range addrs {
			if !a.IP.IsLoopback() {
				return nil, in.refuse("plain http: " + host + " resolves to an address that is not loopback")
			}
			ips = append(ips, a.IP)
		}
	}
	var conn net.Conn
	for _, ip := range ips { // localhost may name ::1 and 127.0.0.1; a server listens on one
		if conn, err = in.dial(ctx, network, net.JoinHostPort(ip.String(), port)); err == nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if ta, ok := conn.RemoteAddr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
		conn.Close()
		return nil, in.refuse("plain http: the connection's peer is not a loopback address")
	}
	return conn, nil
}

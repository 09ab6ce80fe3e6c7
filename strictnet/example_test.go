package strictnet_test

import (
	"errors"
	"fmt"
	"log"
	"net"
	"strings"
	"syscall"

	"github.com/oauthsafe/oauthsafe/strictnet"
)

// NewClient refuses a plain-http URL before any connection is made; a
// Config that would weaken TLS cannot be written, and a bad pin is refused
// with the field it is in.
func ExampleNewClient() {
	c, err := strictnet.NewClient(strictnet.Config{}) // system roots, TLS 1.2+, 30 s, 1 MiB bodies
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Get("http://login.example.com/.well-known/openid-configuration")
	fmt.Println("http refused:", errors.Is(err, strictnet.ErrPolicy))

	_, err = strictnet.NewClient(strictnet.Config{PinnedSPKI: []string{"not-a-pin"}})
	var pe *strictnet.PolicyError
	fmt.Println("bad pin refused:", errors.As(err, &pe), pe.Field)
	// Output:
	// http refused: true
	// bad pin refused: true PinnedSPKI
}

// Hint says what to do about an error a person can act on: here a server
// address where nothing listens. The cause stays reachable with errors.Is
// and errors.As.
func ExampleHint() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more

	c, err := strictnet.NewClient(strictnet.Config{})
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Get("https://" + addr + "/.well-known/openid-configuration")
	var ce *strictnet.ConnError
	fmt.Println(errors.As(err, &ce), errors.Is(err, syscall.ECONNREFUSED))
	fmt.Println(strings.ReplaceAll(strictnet.Hint(err), addr, "127.0.0.1:PORT"))
	// Output:
	// true true
	// nothing accepts connections at 127.0.0.1:PORT: check the URL's host and port, and that the server is running
}

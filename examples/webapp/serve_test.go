package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/tokenstore"

	"github.com/oauthsafe/oauthsafe/internal/engine"
)

// TestServeDrainsOnSIGTERM: on SIGTERM serve stops accepting, lets the
// request in flight finish, then drains the pool (it refuses new calls
// with ErrClosed) and returns nil.
func TestServeDrainsOnSIGTERM(t *testing.T) {
	pool, err := new(oauthclient.Client).UserPool(oauthclient.TokenSourceConfig{Store: &tokenstore.Memory{}})
	if err != nil {
		t.Fatal(err)
	}
	inFlight, finished := make(chan struct{}), make(chan struct{})
	a := &webApp{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inFlight)
		time.Sleep(300 * time.Millisecond)
		close(finished)
	}), users: pool}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: a}
	done := make(chan error, 1)
	go func() { done <- serve(context.Background(), hs, a, func() error { return hs.Serve(l) }) }()
	go http.Get("http://" + l.Addr().String() + "/")
	<-inFlight
	syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return after SIGTERM")
	}
	select {
	case <-finished:
	default:
		t.Fatal("serve returned before the request in flight finished")
	}
	if _, err := pool.Source(context.Background(), "k"); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("the pool was not drained: %v", err)
	}
}

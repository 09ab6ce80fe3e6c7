package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/internal/testkit/keyringtest"
	"github.com/oauthsafe/oauthsafe/oauthtest"
)

// benchLogin logs alice in, in process, against the real server and the
// real keyring, with HOME and the XDG directories of the keyring daemon.
func benchLogin(b *testing.B) (*env, *oauthtest.Server) {
	b.Helper()
	kr := keyringtest.New(b)
	for _, kv := range kr.Env() {
		k, v, _ := strings.Cut(kv, "=")
		if k == "HOME" || strings.HasPrefix(k, "XDG_") {
			b.Setenv(k, v)
		}
	}
	b.Setenv(envNoAgent, "")
	srv, err := oauthtest.Start(oauthtest.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Close)
	ca := filepath.Join(b.TempDir(), "ca.pem")
	os.WriteFile(ca, srv.CACertPEM, 0o600)
	e := &env{stdout: io.Discard, stderr: io.Discard, getenv: os.Getenv}
	ctx := context.Background()
	p := &profile{Issuer: srv.Issuer, ClientID: oauthtest.ClientNative, Scopes: []string{"openid", "offline_access"}, CAFile: ca}
	c, err := newClient(ctx, e, p)
	if err != nil {
		b.Fatal(err)
	}
	l := &callback.Loopback{Client: c, Out: io.Discard, Open: func(u string) error {
		go func() {
			cb, err := srv.Login(ctx, u, "alice")
			if err == nil {
				if res, err := http.Get(cb); err == nil {
					res.Body.Close()
				}
			}
		}()
		return nil
	}}
	tokens, err := l.Login(ctx)
	if err != nil {
		b.Fatal(err)
	}
	store, _ := openStore(e, p, false)
	if code := finishLogin(ctx, e, defaultProfile, p, c, store, tokens); code != exitOK {
		b.Fatal("finishLogin failed")
	}
	saveMetadata(defaultProfile, c)
	return e, srv
}

// BenchmarkCLITokenWarm is one `token` round trip through a running agent
// that holds a valid access token: no network request.
func BenchmarkCLITokenWarm(b *testing.B) {
	e, srv := benchLogin(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- serveAgent(ctx, e, time.Hour) }()
	b.Cleanup(func() { cancel(); <-done })
	for range 100 {
		if _, err := agentCall(ctx, e.getenv, agentRequest{Op: "ping"}, time.Second); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := tokenFromAgent(ctx, e, defaultProfile, tokenWant{}); err != nil {
		b.Fatal(err)
	}
	srv.Reset()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tokenFromAgent(ctx, e, defaultProfile, tokenWant{}); err != nil {
			b.Fatal(err)
		}
	}
	total := 0
	for _, n := range srv.Counts() {
		total += n
	}
	b.ReportMetric(float64(total)/float64(b.N), "requests/op")
}

// BenchmarkCLITokenNoAgent is one `token --no-agent`: a refresh against the
// server with the stored refresh token (cached metadata, as the CLI does).
func BenchmarkCLITokenNoAgent(b *testing.B) {
	e, srv := benchLogin(b)
	ctx := context.Background()
	srv.Reset()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := getToken(ctx, e, defaultProfile, true, tokenWant{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(srv.TokenRequests("refresh_token"))/float64(b.N), "requests/op")
}

package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/oauthtest/demoapi"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/validate"
)

// demoAPI is a resource server for the demo: it checks bearer tokens with
// internal/demoapi, and offers redirects to hosts that must never see a token.
type demoAPI struct {
	srv        *httptest.Server
	stolen     atomic.Int32 // requests that reached the "other" hosts
	otherHTTPS *httptest.Server
	otherHTTP  *httptest.Server
}

func startDemoAPI(ctx context.Context, as *oauthtest.Server) (*demoAPI, error) {
	checker, err := demoapi.New(ctx, as)
	if err != nil {
		return nil, err
	}
	a := &demoAPI{}
	record := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.stolen.Add(1) })
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		return nil, err
	}
	a.otherHTTPS = httptest.NewUnstartedServer(record)
	a.otherHTTPS.Listener.Close()
	a.otherHTTPS.Listener = l
	a.otherHTTPS.StartTLS()
	a.otherHTTP = httptest.NewServer(record)

	// The demo's client must send no-store and keep the token out of the URL.
	need := func(scope string) http.HandlerFunc {
		ok := checker.Require(scope, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) })
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Cache-Control") != "no-store" || r.URL.RawQuery != "" {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			ok(w, r)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/read", need(oauthtest.ScopeAPIRead))
	mux.Handle("/v1/write", need(oauthtest.ScopeAPIWrite))
	mux.HandleFunc("/v1/moved-away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, a.otherHTTPS.URL+"/steal", http.StatusFound)
	})
	mux.HandleFunc("/v1/moved-to-http", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, a.otherHTTP.URL+"/steal", http.StatusFound)
	})
	a.srv = httptest.NewTLSServer(mux)
	return a, nil
}

func (a *demoAPI) Close() {
	a.srv.Close()
	a.otherHTTPS.Close()
	a.otherHTTP.Close()
}

func (d *demo) apiSection(ctx context.Context, as *oauthtest.Server, svc *oauthclient.Client) error {
	d.section("Calling an API with the bearer token")
	api, err := startDemoAPI(ctx, as)
	if err != nil {
		return fmt.Errorf("starting the demo API: %w", err)
	}
	defer api.Close()
	pool := x509.NewCertPool()
	pool.AddCert(api.srv.Certificate())
	src := svc.ClientCredentials(oauthclient.GrantOptions{NoDPoP: true /* the bearer story; DPoP has its own section */})
	hc, err := apiclient.New(src, apiclient.Config{
		AllowedOrigins: []string{api.srv.URL},
		HTTP:           strictnet.Config{RootCAs: pool},
	})
	if err != nil {
		return err
	}
	get := func(u string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		if resp != nil {
			resp.Body.Close()
		}
		return resp, err
	}
	resp, err := get(api.srv.URL + "/v1/read")
	if err != nil || resp.StatusCode != http.StatusOK {
		d.fail("API call with a valid token: %v", err)
	} else {
		d.ok("GET %s/v1/read: 200; the API introspected the token (active, aud=api, scope api.read)", api.srv.URL)
		d.ok("the API saw the token only in the Authorization header, with Cache-Control: no-store")
	}
	stolen := func() string { return fmt.Sprintf(" (requests that reached the other host: %d)", api.stolen.Load()) }
	_, err = get(api.srv.URL + "/v1/moved-away")
	d.expectBlocked("API redirect to another host ("+api.otherHTTPS.URL+")", err, strictnet.ErrPolicy, stolen())
	_, err = get(api.srv.URL + "/v1/moved-to-http")
	d.expectBlocked("API redirect to plain http", err, strictnet.ErrPolicy, stolen())
	_, err = get(api.otherHTTPS.URL + "/anything")
	d.expectBlocked("request to a host not in the allow-list", err, strictnet.ErrPolicy, stolen())
	_, err = get(api.srv.URL + "/v1/read?access_token=x")
	d.expectBlocked("access_token in the query string", err, strictnet.ErrPolicy, "")
	if api.stolen.Load() != 0 {
		d.fail("another host received %d requests", api.stolen.Load())
	}
	_, err = get(api.srv.URL + "/v1/write")
	var ise *validate.InsufficientScopeError
	if errors.As(err, &ise) {
		d.ok("403 insufficient_scope became a typed error naming the scope: %s", strings.Join(ise.Scope, " "))
	} else {
		d.fail("insufficient_scope was not reported as a typed error: %v", err)
	}
	return nil
}

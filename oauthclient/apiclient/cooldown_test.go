package apiclient_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/testkit"
	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"golang.org/x/oauth2"
)

// rejectingSource is an apiSource with a Rejected method of its own (the
// shape of engine.Source.Rejected) that keeps no cooldown.
type rejectingSource struct{ *apiSource }

func (s rejectingSource) Rejected(t *oauth2.Token) bool { s.Invalidate(t); return true }

// TestEveryInvalidatorCoolsDown (S24): an API that answers invalid_token
// to everything gets at most one invalidation of a source's token per
// cooldown (10 s), whatever calls the source: apiclient.New, one client of
// Transport.Client reused, a new Transport.Client per request (the web
// backend's way), an Invalidator or a source with a Rejected method of its
// own. 20 requests within 10 s make one invalidation; after the cooldown,
// one more.
func TestEveryInvalidatorCoolsDown(t *testing.T) {
	api := testkit.NewAPIServer(t, invalidTokenUnless("never"))
	toks := make([]string, 40)
	for i := range toks {
		toks[i] = fmt.Sprintf("tok-%d", i)
	}
	for _, tc := range []struct {
		name     string
		rejected bool // the source has a Rejected method of its own
		client   func(t *testing.T, clk *testkit.Clock, src oauth2.TokenSource) func() *http.Client
	}{
		{"New", false, func(t *testing.T, clk *testkit.Clock, src oauth2.TokenSource) func() *http.Client {
			c, err := apiclient.New(src, apiclient.Config{AllowedOrigins: []string{api.URL}, HTTP: strictnet.Config{RootCAs: api.Pool()}, Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			return func() *http.Client { return c }
		}},
		{"one Transport.Client", false, func(t *testing.T, clk *testkit.Clock, src oauth2.TokenSource) func() *http.Client {
			c, err := shared(t, api, clk).Client(src)
			if err != nil {
				t.Fatal(err)
			}
			return func() *http.Client { return c }
		}},
		{"Transport.Client per request", false, perRequest(api)},
		{"Rejected of its own, Transport.Client per request", true, perRequest(api)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testkit.NewClock(time.Now())
			as := newAPISource(toks...)
			var src oauth2.TokenSource = as
			if tc.rejected {
				src = rejectingSource{as}
			}
			client := tc.client(t, clk, src)
			call := func() {
				t.Helper()
				resp, err := client().Post(api.URL+"/x", "text/plain", strings.NewReader("b"))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("status %d", resp.StatusCode)
				}
			}
			for i := 0; i < 20; i++ { // 20 requests in 9.5 s
				call()
				clk.Advance(500 * time.Millisecond)
			}
			if _, inv := as.counts(); inv != 1 {
				t.Fatalf("%d invalidations for 20 requests within 10 s, want 1", inv)
			}
			clk.Advance(time.Second) // past the cooldown
			call()
			if _, inv := as.counts(); inv != 2 {
				t.Fatalf("%d invalidations after the cooldown, want 2", inv)
			}
		})
	}
}

// perRequest makes a new client of one shared Transport for every request
// (the web backend's way).
func perRequest(api *testkit.APIServer) func(t *testing.T, clk *testkit.Clock, src oauth2.TokenSource) func() *http.Client {
	return func(t *testing.T, clk *testkit.Clock, src oauth2.TokenSource) func() *http.Client {
		tr := shared(t, api, clk)
		return func() *http.Client {
			c, err := tr.Client(src)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
	}
}

// shared is a Transport without a source of its own, for Transport.Client.
func shared(t *testing.T, api *testkit.APIServer, clk *testkit.Clock) *apiclient.Transport {
	t.Helper()
	tr, err := apiclient.NewTransport(apiclient.Config{AllowedOrigins: []string{api.URL}, HTTP: strictnet.Config{RootCAs: api.Pool()}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

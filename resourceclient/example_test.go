package resourceclient_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/oauthsafe/oauthsafe/resourceclient"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// An agent or MCP client that knows only the URL of the server it calls
// starts with New. New does no I/O: the chain (discovery, registration,
// login) runs at the first request the resource answers with 401. A
// resource that is not https, or has a fragment or a query, is refused.
func ExampleNew() {
	ctx := context.Background()
	client, err := resourceclient.New(ctx, resourceclient.Config{
		Resource: "https://mcp.example.com/mcp",
		Store:    new(tokenstore.Memory), // a keyring.Store in a real agent
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(client)
	for _, resource := range []string{
		"http://mcp.example.com/mcp",
		"https://mcp.example.com/mcp#tools",
		"https://mcp.example.com/mcp?tenant=1",
	} {
		_, err := resourceclient.New(ctx, resourceclient.Config{Resource: resource})
		fmt.Println(errors.Is(err, strictnet.ErrPolicy), err)
	}
	// Output:
	// resourceclient.Client{resource=https://mcp.example.com/mcp, store=redacted, grant=none, allow_loopback_http=false}
	// true oauthsafe: refused by security policy: resourceclient: Resource must use https
	// true oauthsafe: refused by security policy: resourceclient: Resource must not have a fragment
	// true oauthsafe: refused by security policy: resourceclient: Resource must not have a query
}

// The agent's *http.Client sends the resource's token only within the
// resource: its origin, and paths under its path by whole segments. Any
// other URL is refused before anything is sent (the tracing wrapper here
// counts the requests that leave).
func ExampleClient_HTTPClient() {
	var sent atomic.Int64
	client, err := resourceclient.New(context.Background(), resourceclient.Config{
		Resource: "https://mcp.example.com/mcp",
		HTTP: strictnet.Config{Wrap: func(next http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				sent.Add(1)
				return next.RoundTrip(r)
			})
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	hc := client.HTTPClient()
	for _, u := range []string{
		"https://other.example/collect",
		"https://mcp.example.com/mcp-admin",
		"http://mcp.example.com/mcp",
	} {
		_, err := hc.Get(u)
		fmt.Println(u, errors.Is(err, resourceclient.ErrNotWithinResource))
	}
	fmt.Println("requests sent:", sent.Load())
	// Output:
	// https://other.example/collect true
	// https://mcp.example.com/mcp-admin true
	// http://mcp.example.com/mcp true
	// requests sent: 0
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// An agent's status command asks for the Session: it is resumed from the
// Store after asking the resource who authorizes it, so a resource that
// cannot be reached is told apart from one the user never logged in to
// (tokenstore.ErrLoginRequired). Here nothing accepts the connection (a
// dialer that refuses every one, so that the example runs offline).
func ExampleClient_Session() {
	client, err := resourceclient.New(context.Background(), resourceclient.Config{
		Resource: "https://mcp.example.com/mcp",
		HTTP: strictnet.Config{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
			},
			Proxy: func(*http.Request) (*url.URL, error) { return nil, nil }, // no proxy, whatever the environment says
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	s, err := client.Session(context.Background())
	switch {
	case err == nil:
		fmt.Println("logged in at", s.Issuer, "with scopes", s.Scopes)
	case errors.Is(err, tokenstore.ErrLoginRequired):
		fmt.Println("not logged in: run the login command")
	default:
		fmt.Println("cannot tell:", err)
		fmt.Println(strictnet.Hint(err))
	}
	// Output:
	// cannot tell: dial tcp: connection refused
	// nothing accepts connections at mcp.example.com:443: check the URL's host and port, and that the server is running
}

// An agent with a client registered in advance gives its Credentials; they
// are used only at the issuer they name, and the secret never prints.
func ExampleCredentials() {
	clientSecret, err := secret.FromReader(strings.NewReader("s3cr3t")) // in production: secret.FromEnv or secret.FromFile
	if err != nil {
		log.Fatal(err)
	}
	cfg := resourceclient.Config{
		Resource: "https://mcp.example.com/mcp",
		Credentials: &resourceclient.Credentials{
			Issuer:       "https://login.example.com",
			ClientID:     "my-agent",
			ClientSecret: clientSecret,
			AuthMethod:   "client_secret_basic",
		},
	}
	fmt.Println(cfg)
	fmt.Printf("%+v\n", *cfg.Credentials)
	// Output:
	// resourceclient.Config{resource=https://mcp.example.com/mcp, credentials=resourceclient.Credentials{issuer=https://login.example.com, client_id=my-agent, auth_method=client_secret_basic, client_secret=redacted}, store=none, grant=none, allow_loopback_http=false}
	// resourceclient.Credentials{issuer=https://login.example.com, client_id=my-agent, auth_method=client_secret_basic, client_secret=redacted}
}

// A service acting as itself gives a Grant built on the Credentials of
// its client at the issuer: no browser opens, and the Grant is refused,
// before anything is sent, at an issuer other than its own. Printed, it
// shows no secret.
func ExampleClientCredentials() {
	clientSecret, err := secret.FromReader(strings.NewReader("s3cr3t")) // in production: secret.FromEnv or secret.FromFile
	if err != nil {
		log.Fatal(err)
	}
	grant := resourceclient.ClientCredentials(resourceclient.Credentials{
		Issuer: "https://login.example.com", ClientID: "orders-agent", ClientSecret: clientSecret,
	})
	client, err := resourceclient.New(context.Background(), resourceclient.Config{Resource: "https://mcp.example.com/mcp", Grant: grant})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(client)
	fmt.Println(grant)
	// What the Client does when a resource names another issuer:
	_, err = grant.TokenSource(context.Background(), resourceclient.Server{Resource: "https://mcp.example.com/mcp", Issuer: "https://other.example"})
	fmt.Println(errors.Is(err, resourceclient.ErrGrantIssuer))
	// Output:
	// resourceclient.Client{resource=https://mcp.example.com/mcp, store=none, grant=redacted, allow_loopback_http=false}
	// resourceclient.ClientCredentials{issuer=https://login.example.com, client_id=orders-agent, auth_method=, client_secret=redacted}
	// true
}

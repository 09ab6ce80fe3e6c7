package oauthclient_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/oauthsafe/oauthsafe"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/assertion"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// staticMetadata stands in for discovery, so that the examples run offline
// (the e2e module's examples run whole flows against a real provider).
func staticMetadata() *oauthclient.Metadata {
	return &oauthclient.Metadata{
		Issuer:                        "https://login.example.com",
		AuthorizationEndpoint:         "https://login.example.com/authorize",
		TokenEndpoint:                 "https://login.example.com/token",
		RevocationEndpoint:            "https://login.example.com/revoke",
		CodeChallengeMethodsSupported: []string{"S256"},
	}
}

// counted is a strictnet.Config whose tracing wrapper counts the requests
// the client sends (a real program puts otelhttp.NewTransport there).
func counted(sent *atomic.Int64) strictnet.Config {
	return strictnet.Config{Wrap: func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			sent.Add(1)
			return next.RoundTrip(r)
		})
	}}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Every kind of user starts with New. A Config.Metadata skips discovery
// and is checked as a discovered document would be: an endpoint that is
// not https is refused before anything is sent.
func ExampleNew() {
	md := staticMetadata()
	md.TokenEndpoint = "http://login.example.com/token"
	_, err := oauthclient.New(context.Background(), oauthclient.Config{
		Issuer:   "https://login.example.com",
		ClientID: "orders-service",
		Metadata: md,
	})
	fmt.Println("policy refusal:", errors.Is(err, strictnet.ErrPolicy))
	fmt.Println(err)
	// Output:
	// policy refusal: true
	// oauthsafe: refused by security policy: token_endpoint must use https
}

// A backend service with no user gets its own tokens with the client
// credentials grant: the source is built at start-up and fetches nothing
// until a token is needed (a call to another origin is refused before one
// is). A client without authentication cannot use the grant: its first
// Token call is refused before any request.
func ExampleClient_ClientCredentials() {
	ctx := context.Background()
	var sent atomic.Int64
	clientSecret, err := secret.FromReader(strings.NewReader("s3cr3t")) // in production: secret.FromEnv or secret.FromFile
	if err != nil {
		log.Fatal(err)
	}
	client, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer:       "https://login.example.com",
		ClientID:     "orders-service",
		ClientSecret: clientSecret,
		Scopes:       []string{"orders.read"},
		Metadata:     staticMetadata(),
		HTTP:         counted(&sent),
	})
	if err != nil {
		log.Fatal(err)
	}
	src := client.ClientCredentials(oauthclient.GrantOptions{})
	api, err := apiclient.New(src, apiclient.Config{AllowedOrigins: []string{"https://api.example.com"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("auth method:", client.Config().AuthMethod)
	fmt.Println("requests before the first call:", sent.Load())
	_, err = api.Get("https://other.example/collect") // refused before a token is fetched
	fmt.Println("other origin refused:", errors.Is(err, strictnet.ErrPolicy))
	fmt.Println("requests sent:", sent.Load())

	public, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer:   "https://login.example.com",
		ClientID: "a-public-client", // no secret, no key: AuthNone
		Metadata: staticMetadata(),
		HTTP:     counted(&sent),
	})
	if err != nil {
		log.Fatal(err)
	}
	_, err = public.ClientCredentials(oauthclient.GrantOptions{}).Token()
	fmt.Println(err)
	fmt.Println("policy refusal:", errors.Is(err, strictnet.ErrPolicy))
	fmt.Println("requests sent:", sent.Load())
	// Output:
	// auth method: client_secret_basic
	// requests before the first call: 0
	// other origin refused: true
	// requests sent: 0
	// oauthsafe: refused by security policy: client credentials need client authentication
	// policy refusal: true
	// requests sent: 0
}

// expiredJWT is a JWT-shaped assertion whose exp has passed (the
// signature is the authorization server's to check).
func expiredJWT() string {
	enc := base64.RawURLEncoding.EncodeToString
	payload := fmt.Sprintf(`{"iss":"https://ci.example.com","sub":"repo:shop/orders","aud":"https://login.example.com","exp":%d}`,
		time.Now().Add(-time.Hour).Unix())
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc([]byte(payload)) + ".c2lnbmF0dXJl"
}

// A workload with no stored secret trades the token its platform writes
// (a Kubernetes projected service-account token, a CI job's OIDC token)
// for an access token with the JWT-bearer grant. The file is read for each
// token request; an assertion whose exp has passed is refused before it is
// sent, and no error shows it.
func ExampleClient_JWTBearer() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "workload")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "token") // in a pod: /var/run/secrets/tokens/<name>
	raw := expiredJWT()
	if err := os.WriteFile(path, []byte(raw), 0o600); err != nil {
		log.Fatal(err)
	}
	var sent atomic.Int64
	client, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer:   "https://login.example.com",
		ClientID: "orders-workload",
		Metadata: staticMetadata(),
		HTTP:     counted(&sent),
	})
	if err != nil {
		log.Fatal(err)
	}
	src := client.JWTBearer(assertion.File(path), oauthclient.GrantOptions{})
	_, err = src.Token()
	fmt.Println("expired:", errors.Is(err, assertion.ErrExpired))
	fmt.Println("assertion in the error:", strings.Contains(err.Error(), raw))
	fmt.Println("requests sent:", sent.Load())
	// Output:
	// expired: true
	// assertion in the error: false
	// requests sent: 0
}

// A desktop or CLI tool keeps its login in a Store (a keyring.Store in
// a real tool; tokenstore.Memory here) under a key it can find again, and
// resumes it in the next run with a nil login. Resuming needs a Store and a
// Key; a key with nothing stored means the user must log in first.
func ExampleClient_TokenSource() {
	ctx := context.Background()
	var sent atomic.Int64
	client, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer:      "https://login.example.com",
		ClientID:    "my-cli",
		RedirectURL: "http://127.0.0.1/callback",
		Scopes:      []string{"openid", "offline_access"},
		Metadata:    staticMetadata(),
		HTTP:        counted(&sent),
	})
	if err != nil {
		log.Fatal(err)
	}
	_, err = client.TokenSource(ctx, oauthclient.TokenSourceConfig{}, nil)
	fmt.Println("configuration error:", errors.Is(err, oauthsafe.ErrConfig))

	store := new(tokenstore.Memory)
	key := tokenstore.ProfileKey("https://login.example.com", "my-cli", "default")
	src, err := client.TokenSource(ctx, oauthclient.TokenSourceConfig{Store: store, Key: key}, nil)
	if err != nil {
		log.Fatal(err)
	}
	_, err = src.TokenContext(ctx)
	fmt.Println("log in first:", errors.Is(err, tokenstore.ErrLoginRequired))
	fmt.Println("requests sent:", sent.Load())
	// Output:
	// configuration error: true
	// log in first: true
	// requests sent: 0
}

// A web backend serving many users keeps one pool for them all over its
// vault (a sqlstore.Store in a real server). A visitor with no session (an
// empty key) or a user who never logged in is tokenstore.ErrLoginRequired:
// send them to the login. Logging a user out revokes and deletes the
// stored record; with nothing stored nothing is sent.
func ExampleClient_UserPool() {
	ctx := context.Background()
	var sent atomic.Int64
	client, err := oauthclient.New(ctx, oauthclient.Config{
		Issuer:      "https://login.example.com",
		ClientID:    "shop-web",
		RedirectURL: "https://shop.example.com/callback",
		Scopes:      []string{"openid", "offline_access"},
		Metadata:    staticMetadata(),
		HTTP:        counted(&sent),
	})
	if err != nil {
		log.Fatal(err)
	}
	_, err = client.UserPool(oauthclient.TokenSourceConfig{}) // no Store
	fmt.Println("configuration error:", errors.Is(err, oauthsafe.ErrConfig))

	pool, err := client.UserPool(oauthclient.TokenSourceConfig{Store: new(tokenstore.Memory)})
	if err != nil {
		log.Fatal(err)
	}
	_, err = pool.Source(ctx, "")
	fmt.Println("visitor without a session:", errors.Is(err, tokenstore.ErrLoginRequired))
	key := tokenstore.Key("https://login.example.com", "shop-web", "user-1234")
	_, err = pool.Source(ctx, key)
	fmt.Println("never logged in:", errors.Is(err, tokenstore.ErrLoginRequired))
	fmt.Println("logout:", pool.End(ctx, key))
	fmt.Println("requests sent:", sent.Load())
	if err := pool.Drain(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// configuration error: true
	// visitor without a session: true
	// never logged in: true
	// logout: <nil>
	// requests sent: 0
}

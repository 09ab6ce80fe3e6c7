// Command mcp is an MCP client that knows only the URL of the server it
// calls: its HTTP client comes from oauthsafe's resource-first client
// (package resourceclient), which discovers the server's authorization
// server, registers (pre-registered credentials, a Client ID Metadata
// Document, or dynamic registration), logs the user in through the browser
// and keeps the token; the MCP side is the Go MCP SDK's client.
//
//	go run ./examples/mcp https://mcp.example.com/mcp
//
// It connects, lists the tools and, with -call, calls one. The issuer is
// shown before the browser opens; the refresh token and the dynamic
// registration are kept in the OS keyring, so a second run needs no
// browser. Plain http is refused unless -allow-loopback-http is given, and
// then only for localhost, 127.0.0.0/8 and ::1.
//
// It is also the project's client for the MCP authorization conformance
// suite (scripts/conformance.sh): when MCP_CONFORMANCE_SCENARIO is set, the
// browser step is played headlessly (the suite's authorization server
// redirects at once), loopback http is allowed, nothing is stored, and the
// pre-registered credentials come from MCP_CONFORMANCE_CONTEXT. The client
// does the same thing in every scenario; only its configuration changes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"
	"unicode"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/pkg/browser"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/resourceclient"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore/keyring"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mcp:", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	server            string // the MCP endpoint
	allowLoopbackHTTP bool
	clientMetadataURL string
	clientID          string
	issuer            string
	call              string
}

func parseArgs(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("mcp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mcp [flags] SERVER_URL")
		fs.PrintDefaults()
	}
	fs.BoolVar(&o.allowLoopbackHTTP, "allow-loopback-http", false, "allow plain http to localhost, 127.0.0.0/8 and ::1 (local development servers)")
	fs.StringVar(&o.clientMetadataURL, "client-metadata-url", "", "https URL of this client's Client ID Metadata Document, used where the server supports it")
	fs.StringVar(&o.clientID, "client-id", "", "a pre-registered client id (its secret, if any, in MCP_CLIENT_SECRET); needs -issuer")
	fs.StringVar(&o.issuer, "issuer", "", "the authorization server the pre-registered client belongs to")
	fs.StringVar(&o.call, "call", "", "after listing the tools, call this tool with no arguments")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return o, errors.New("one SERVER_URL is needed")
	}
	if (o.clientID == "") != (o.issuer == "") {
		return o, errors.New("-client-id and -issuer go together")
	}
	o.server = fs.Arg(0)
	return o, nil
}

// run is the program: the tools (and a tool's result) on stdout, progress
// and the authorization URL on stderr. It never prints a token.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	cfg, err := configure(o, getenv, stderr)
	if err != nil {
		return err
	}
	rc, err := resourceclient.New(ctx, cfg)
	if err != nil {
		return err
	}
	return session(ctx, rc, o, stdout)
}

// configure builds the resource client's configuration: for a user (the
// keyring, the system browser, the issuer shown before it opens) or, under
// the conformance suite, from MCP_CONFORMANCE_CONTEXT.
func configure(o options, getenv func(string) string, stderr io.Writer) (resourceclient.Config, error) {
	cfg := resourceclient.Config{
		Resource:            o.server,
		ClientIDMetadataURL: o.clientMetadataURL,
		ClientName:          "oauthsafe MCP example",
		WantRefreshToken:    true,
		HTTP:                strictnet.Config{AllowLoopbackHTTP: o.allowLoopbackHTTP},
	}
	if o.clientID != "" {
		cred := &resourceclient.Credentials{Issuer: o.issuer, ClientID: o.clientID}
		if getenv("MCP_CLIENT_SECRET") != "" {
			s, err := secret.FromEnv("MCP_CLIENT_SECRET")
			if err != nil {
				return cfg, err
			}
			cred.ClientSecret = s
		}
		cfg.Credentials = cred
	}
	if scenario := getenv("MCP_CONFORMANCE_SCENARIO"); scenario != "" {
		if err := conformance(&cfg, getenv("MCP_CONFORMANCE_CONTEXT")); err != nil {
			return cfg, fmt.Errorf("conformance scenario %s: %w", scenario, err)
		}
		return cfg, nil
	}
	cfg.Store = &keyring.Store{Service: "oauthsafe-mcp-example"}
	cfg.Loopback = callback.Loopback{Open: browser.OpenURL, Out: stderr}
	cfg.ConfirmIssuer = func(_ context.Context, issuer string) error {
		fmt.Fprintf(stderr, "%s signs you in at %s\n", o.server, clean(issuer, 500))
		return nil
	}
	return cfg, nil
}

// session connects to the server with the resource client's HTTP client,
// lists the tools and calls one if asked.
func session(ctx context.Context, rc *resourceclient.Client, o options, stdout io.Writer) error {
	client := mcp.NewClient(&mcp.Implementation{Name: "oauthsafe-mcp-example", Version: "1.0.0"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: o.server, HTTPClient: rc.HTTPClient()}, nil)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer cs.Close()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		return fmt.Errorf("list tools: %w", err)
	}
	for _, t := range tools.Tools {
		fmt.Fprintf(stdout, "tool %s\n", clean(t.Name, 200))
	}
	if o.call == "" {
		return nil
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: o.call, Arguments: map[string]any{}})
	if err != nil {
		return fmt.Errorf("call %s: %w", o.call, err)
	}
	var text []string
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			text = append(text, clean(t.Text, 2000))
		}
	}
	if res.IsError {
		return fmt.Errorf("call %s: the tool failed: %s", o.call, strings.Join(text, " "))
	}
	fmt.Fprintf(stdout, "%s: %s\n", o.call, strings.Join(text, " "))
	return nil
}

// clean makes server text safe to print on a terminal: control and
// formatting characters (escape sequences, bidirectional overrides) become
// U+FFFD, and at most max runes are kept.
func clean(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			b.WriteString("…")
			break
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			r = '\uFFFD'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

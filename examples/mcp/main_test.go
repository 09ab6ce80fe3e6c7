package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/oauthtest/demoapi"
	"github.com/oauthsafe/oauthsafe/resourceclient"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/tokenstore/keyring"
)

// mcpServer is a Go MCP SDK server with one tool, echo, at /mcp of an
// https host, protected by demoapi: protected resource metadata, and
// tokens of the in-process provider introspected for the resource and
// api.read.
func mcpServer(t *testing.T, as *oauthtest.Server) string {
	t.Helper()
	mux := http.NewServeMux()
	ts := httptest.NewUnstartedServer(mux)
	as.StartTLS(ts)
	t.Cleanup(ts.Close)
	resource := ts.URL + "/mcp"
	api, err := demoapi.NewResource(context.Background(), as, demoapi.ResourceConfig{
		Resource:       resource,
		ChallengeScope: []string{oauthtest.ScopeAPIRead},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := mcp.NewServer(&mcp.Implementation{Name: "echo-server", Version: "1.0.0"}, nil)
	srv.AddTool(&mcp.Tool{Name: "echo", InputSchema: map[string]any{"type": "object"}},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "hello from the server"}}}, nil
		})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	mux.Handle("/mcp", api.Require(oauthtest.ScopeAPIRead, h.ServeHTTP))
	mux.HandleFunc("/.well-known/oauth-protected-resource/mcp", api.ServeMetadata)
	return resource
}

// TestMCPClient is the command without the conformance suite: it connects
// to an MCP server it knows only by URL, which sends it to the in-process
// provider; the issuer is shown, the client registers dynamically, alice
// signs in through the loopback receiver, the tools are listed and one is
// called.
func TestMCPClient(t *testing.T) {
	as, err := oauthtest.Start(oauthtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer as.Close()
	resource := mcpServer(t, as)
	ctx := context.Background()

	o, err := parseArgs([]string{"-call", "echo", resource}, new(bytes.Buffer))
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cfg, err := configure(o, func(string) string { return "" }, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	// A user's configuration: the keyring, a real browser, the issuer shown.
	if _, ok := cfg.Store.(*keyring.Store); !ok || cfg.Browser != nil || cfg.Loopback.Open == nil || cfg.ConfirmIssuer == nil || cfg.HTTP.AllowLoopbackHTTP {
		t.Fatalf("not a user's configuration: %+v", cfg)
	}
	// The test's stand-ins: a memory store, the provider's CA, and alice
	// at the provider's login page instead of the system browser.
	cfg.Store = new(tokenstore.Memory)
	cfg.HTTP.RootCAs = as.RootCAs()
	opened := 0
	cfg.Loopback.Open = func(authURL string) error {
		opened++
		cb, err := as.Login(ctx, authURL, oauthtest.UserAlice)
		if err != nil {
			return err
		}
		go func() {
			resp, err := http.Get(cb)
			if err == nil {
				resp.Body.Close()
			}
		}()
		return nil
	}
	rc, err := resourceclient.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := session(ctx, rc, o, &stdout); err != nil {
		t.Fatalf("session: %v\nstderr:\n%s", err, stderr.String())
	}
	if got, want := stdout.String(), "tool echo\necho: hello from the server\n"; got != want {
		t.Fatalf("stdout = %q, want %q", got, want)
	}
	if opened != 1 || as.Registrations() != 1 {
		t.Fatalf("%d logins, %d registrations; want 1 and 1", opened, as.Registrations())
	}
	if !strings.Contains(stderr.String(), resource+" signs you in at "+as.Issuer+"\n") {
		t.Fatalf("the issuer was not shown:\n%s", stderr.String())
	}
}

// TestMCPClientRefusesPlainHTTP: plain http, even to a loopback server,
// only with -allow-loopback-http.
func TestMCPClientRefusesPlainHTTP(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"http://127.0.0.1:1/mcp"}, func(string) string { return "" }, &stdout, &stderr)
	if !errors.Is(err, strictnet.ErrPolicy) {
		t.Fatalf("err = %v, want a policy refusal", err)
	}
}

// TestMCPClientUsage: -h is not an error; a missing or extra URL, a lone
// -client-id and an unknown flag are errors, with nothing on stdout.
func TestMCPClientUsage(t *testing.T) {
	noEnv := func(string) string { return "" }
	for _, tc := range []struct {
		args    []string
		wantErr bool
	}{
		{args: []string{"-h"}},
		{args: nil, wantErr: true},
		{args: []string{"https://a.example/mcp", "https://b.example/mcp"}, wantErr: true},
		{args: []string{"-client-id", "c", "https://a.example/mcp"}, wantErr: true},
		{args: []string{"-no-such-flag", "https://a.example/mcp"}, wantErr: true},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tc.args, noEnv, &stdout, &stderr)
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err = %v, want an error: %v", tc.args, err, tc.wantErr)
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: wrote %q to stdout", tc.args, stdout.String())
		}
	}
}

func TestClean(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"search", 200, "search"},
		{"red\x1b[31mtext", 200, "red\uFFFD[31mtext"},
		{"a\u202eb\nc", 200, "a\uFFFDb\uFFFDc"},
		{"héllo wörld", 200, "héllo wörld"},
		{"abcdef", 3, "abc…"},
		{"abc", 3, "abc"},
	} {
		if got := clean(tc.in, tc.max); got != tc.want {
			t.Errorf("clean(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

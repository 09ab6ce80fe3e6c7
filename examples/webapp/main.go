// Command webapp is a web application that signs its users in with the
// authorization-code flow and calls an API on their behalf for as long as
// they stay signed in.
//
//   - /login starts a login and /callback is the redirect endpoint; pending
//     logins live in sealed cookies, so any replica sharing the cookie key
//     can serve them.
//   - On login, the user's record (refresh token, subject, granted scopes)
//     goes to the vault (tokenstore/sqlstore), sealed with AES-256-GCM under
//     the application's key, and the user's token engine joins a bounded
//     per-user pool. Access tokens stay in memory.
//   - / calls the API with the user's access token (apiclient.New
//     on the pooled engine); the engine refreshes ahead of expiry, one
//     refresh per refresh token across every replica sharing the vault.
//   - POST /logout revokes the refresh token at the server and deletes the
//     record.
//
// With no flags it runs the demo: an embedded authorization server and API,
// a vault in a temporary SQLite file sealed with a key generated for this
// run only, and a programmatic browser that signs in as alice:
//
//	go run ./examples/webapp
//
// For a real provider, the secrets come from the environment (or a 0600
// file for the sealing keys), never from flags:
//
//	WEBAPP_CLIENT_SECRET=... WEBAPP_COOKIE_KEY=$(openssl rand -hex 32) \
//	WEBAPP_VAULT_KEYS="k1:$(openssl rand -base64 32)" \
//	go run ./examples/webapp -issuer https://id.example.com -client-id web \
//	    -redirect https://app.example.com/callback -api https://api.example.com/v1/me \
//	    -listen 127.0.0.1:8443 -tls-cert cert.pem -tls-key key.pem
//
// The vault is the SQLite file -sqlite (default webapp-vault.db); with a
// PostgreSQL DSN in WEBAPP_POSTGRES_DSN (or -postgres) it is PostgreSQL,
// which a fleet of replicas shares. Sessions here are in memory; a fleet
// keeps them where its replicas share them and where they survive a
// restart with the vault (see examples/websession). On SIGTERM or an
// interrupt the server stops accepting, finishes its requests, and drains
// the user pool, writing any rotated refresh token still unsaved.
package main

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/tokenstore/sqlstore"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// Environment variables read by the program.
const (
	envClientSecret = "WEBAPP_CLIENT_SECRET"
	envCookieKey    = "WEBAPP_COOKIE_KEY"
	envVaultKeys    = "WEBAPP_VAULT_KEYS"
	envPostgres     = "WEBAPP_POSTGRES_DSN"
)

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "webapp:", err)
		os.Exit(1)
	}
}

// settings are what the flags and the environment configure.
type settings struct {
	sqlitePath, postgresDSN string
	// keysFile is the 0600 file of the vault's sealing keys; "" means
	// the environment variable envVaultKeys.
	keysFile string
}

// run is the whole program: it serves until SIGTERM or an interrupt (then
// drains, see serve) or until the listener fails, or without -issuer (or
// with -demo) runs the demo. It never prints a token.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("webapp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	issuer := fs.String("issuer", "", "issuer URL; without it the demo runs")
	clientID := fs.String("client-id", "", "client ID (confidential, client_secret_basic; secret in $"+envClientSecret+")")
	redirect := fs.String("redirect", "", "registered https redirect URI, ending in /callback")
	scope := fs.String("scope", "openid profile offline_access", "space-separated scopes")
	api := fs.String("api", "", "https API URL to call on the user's behalf")
	listen := fs.String("listen", "127.0.0.1:8443", "address to serve on")
	certFile := fs.String("tls-cert", "", "TLS certificate")
	keyFile := fs.String("tls-key", "", "TLS key")
	sqlitePath := fs.String("sqlite", "webapp-vault.db", "SQLite file of the vault (demo: a temporary file)")
	postgres := fs.String("postgres", "", "PostgreSQL DSN of the vault (default $"+envPostgres+"; prefer the variable when the DSN holds a password)")
	keysFile := fs.String("vault-keys-file", "", "file (mode 0600) with the vault's sealing keys; default $"+envVaultKeys)
	demo := fs.Bool("demo", false, "run the demo (also the default without -issuer)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s := settings{sqlitePath: *sqlitePath, postgresDSN: *postgres, keysFile: *keysFile}
	if s.postgresDSN == "" {
		s.postgresDSN = os.Getenv(envPostgres)
	}
	if *demo || *issuer == "" {
		return runDemo(ctx, s, stdout, stderr)
	}

	secret, err := secret.FromEnv(envClientSecret)
	if err != nil {
		return err
	}
	cookieKey, err := hex.DecodeString(os.Getenv(envCookieKey))
	if err != nil || len(cookieKey) != 32 {
		return errors.New(envCookieKey + " must be 32 random bytes in hex")
	}
	client, err := oauthclient.New(ctx, oauthclient.Config{Issuer: *issuer, ClientID: *clientID, ClientSecret: secret,
		RedirectURL: *redirect, Scopes: strings.Fields(*scope)})
	if err != nil {
		return err
	}
	vault, db, err := openVault(ctx, s)
	if err != nil {
		return err
	}
	defer db.Close()
	a, err := newApp(appConfig{Client: client, CookieKey: cookieKey, Vault: vault, APIURL: *api, Log: stderr})
	if err != nil {
		return err
	}
	hs := &http.Server{Addr: *listen, Handler: a, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(stderr, "webapp: ", log.LstdFlags)}
	return serve(ctx, hs, a, func() error { return hs.ListenAndServeTLS(*certFile, *keyFile) })
}

// serve runs listen until SIGTERM (a deploy) or an interrupt, then stops
// accepting, lets the requests in flight finish (http.Server.Shutdown) and
// drains the user pool, so no rotated refresh token is lost on a deploy.
// A listener that fails is returned after the same drain.
func serve(ctx context.Context, hs *http.Server, a *webApp, listen func() error) error {
	stopCtx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	listenErr := make(chan error, 1)
	go func() {
		err := listen()
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		listenErr <- err
		stop()
	}()
	<-stopCtx.Done()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 45*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	if derr := a.Drain(sctx); derr != nil {
		err = errors.Join(err, derr)
	}
	if lerr := <-listenErr; lerr != nil {
		err = errors.Join(lerr, err)
	}
	return err
}

// openVault opens the vault: PostgreSQL through pgx when a DSN is set,
// else the SQLite file (WAL, with a busy timeout so that processes sharing
// the file wait for each other). The caller closes the *sql.DB.
func openVault(ctx context.Context, s settings) (*sqlstore.Store, *sql.DB, error) {
	driver, dsn := "sqlite", sqliteDSN(s.sqlitePath)
	if s.postgresDSN != "" {
		driver, dsn = "pgx", s.postgresDSN
	}
	keys, err := secret.FromEnv(envVaultKeys)
	if s.keysFile != "" {
		keys, err = secret.FromFile(s.keysFile) // refused unless 0600 and ours
	}
	if err != nil {
		return nil, nil, err
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, nil, err
	}
	vault, err := sqlstore.New(ctx, sqlstore.Config{DB: db, Keys: keys}) // New asks the database which it is
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return vault, db, nil
}

func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
}

package sqlstore_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/oauthsafe/oauthsafe/tokenstore/sqlstore"
)

// An operator makes a sealing key for the vault: one "id:base64" item,
// kept where the deployment keeps its secrets (a 0600 file, the
// environment, a KMS) and read back with the secret package. It prints
// redacted; a key list written the wrong way round is refused without
// showing it.
func ExampleNewSealingKey() {
	key, err := sqlstore.NewSealingKey("vault-2026-01")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(key) // the value itself: key.Reveal(), only to store it
	id, b64, _ := strings.Cut(key.Reveal(), ":")
	fmt.Println(id, len(b64), "base64 characters")

	cfg := sqlstore.Config{Keys: key}
	fmt.Printf("%+v\n", cfg) // a Config is safe to log

	// The caller's database comes with a driver (modernc.org/sqlite, pgx);
	// without one New refuses the Config before any I/O.
	_, err = sqlstore.New(context.Background(), cfg)
	fmt.Println(err)
	// Output:
	// Secret(redacted)
	// vault-2026-01 44 base64 characters
	// sqlstore.Config{schema=, table=, keys=Secret(redacted), owner=, lease_ttl=0s, lock_timeout=0s}
	// sqlstore: Config.DB and Config.Keys are required (invalid configuration)
}

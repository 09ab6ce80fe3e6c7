package vault_test

import (
	"context"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/testkit/storetest"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

const harnessChild = "TestVaultStoreHarnessChild"

// openHarness opens the vault named by the environment (set by the parent
// for itself and its children), with a 2 s lease so that the harness's
// SIGKILLed holder releases the key within its 20 s bound, and a 30 s
// wait for the lease: 12 engines in 3 processes contend for one key, and
// under a loaded CI run with the race detector one of them once waited
// past the default 4 s (ErrLocked is then the right answer, but not what
// the harness checks: one token request per refresh token, the last one
// stored).
func openHarness(t testing.TB) tokenstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return childVaultWaiting(ctx, t, 2*time.Second, 30*time.Second)
}

// TestVaultStoreHarnessChild is the harness's child process.
func TestVaultStoreHarnessChild(t *testing.T) { storetest.Child(t, openHarness) }

// TestVaultStoreHarness runs the engine's cross-process harness
// (internal/testkit/storetest) on the vault: 3 OS processes × 4 engines refresh one
// key for 300 rotations with exactly one token request per refresh token
// and the last one stored, and a process SIGKILLed inside Update releases
// the key (after its lease). On a SQLite file and on PostgreSQL.
func TestVaultStoreHarness(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Setenv(envDriver, b.driver)
			t.Setenv(envDSN, b.dsn)
			storetest.CrossProcess(t, storetest.Config{Open: openHarness, ChildTest: harnessChild,
				Env: []string{envDriver + "=" + b.driver, envDSN + "=" + b.dsn}})
		})
	}
}

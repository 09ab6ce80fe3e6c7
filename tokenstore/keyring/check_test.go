//go:build linux

package keyring

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/testkit/keyringtest"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// TestCheck: Check and the Store's first call tell the three ways a
// keyring can be unusable apart, each within a few seconds and in words:
// no session bus (and no dbus-launch), a bus with no Secret Service, a
// locked collection; and a working keyring passes.
func TestCheck(t *testing.T) {
	ctx := context.Background()
	timed := func(name string, want string) {
		t.Helper()
		start := time.Now()
		err := Check(ctx)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: Check took %v", name, d)
		}
		if want == "" && err != nil || want != "" && (reasonOf(err) != want || !errors.Is(err, tokenstore.ErrUnavailable)) {
			t.Errorf("%s: Check = %v, want %v", name, err, want)
		}
	}
	d := keyringtest.New(t)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", d.Address)
	timed("working", "")

	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	timed("no bus", reasonNoBus)
	st := &Store{Service: "oauthsafe-check-test"}
	start := time.Now()
	_, err := st.Get(ctx, "k")
	if reasonOf(err) != reasonNoBus || time.Since(start) > 5*time.Second {
		t.Errorf("Store.Get with no bus = %v after %v, want no-bus at once", err, time.Since(start))
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "absent"))
	timed("unreachable bus", reasonNoBus)

	// A bus with no Secret Service.
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", keyringtest.EmptyBus(t))
	timed("no Secret Service", reasonNoSecretService)
	start = time.Now()
	if _, err := st.Get(ctx, "k"); reasonOf(err) != reasonNoSecretService || time.Since(start) > 5*time.Second {
		t.Errorf("Store.Get with no Secret Service = %v after %v", err, time.Since(start))
	}

	// A locked collection.
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", d.Address)
	if err := d.Lock(); err != nil {
		t.Fatal(err)
	}
	timed("locked", reasonLocked)
}

//go:build linux

package keyring

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/oauthsafe/oauthsafe/internal/keyringtest"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// TestCheck: Check and the Store's first call tell the three ways a
// keyring can be unusable apart, each within a few seconds and in words:
// no session bus (and no dbus-launch), a bus with no Secret Service, a
// locked collection; and a working keyring passes.
func TestCheck(t *testing.T) {
	ctx := context.Background()
	timed := func(name string, want error) {
		t.Helper()
		start := time.Now()
		err := Check(ctx)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: Check took %v", name, d)
		}
		if want == nil && err != nil || want != nil && (!errors.Is(err, want) || !errors.Is(err, tokenstore.ErrUnavailable)) {
			t.Errorf("%s: Check = %v, want %v", name, err, want)
		}
	}
	d := keyringtest.New(t)
	for _, kv := range d.Env() {
		if k, v, ok := cut(kv); ok && k == "DBUS_SESSION_BUS_ADDRESS" {
			t.Setenv(k, v)
		}
	}
	timed("working", nil)

	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	timed("no bus", ErrNoBus)
	st := &Store{Service: "oauthsafe-check-test"}
	start := time.Now()
	_, err := st.Get(ctx, "k")
	if !errors.Is(err, ErrNoBus) || time.Since(start) > 5*time.Second {
		t.Errorf("Store.Get with no bus = %v after %v, want ErrNoBus at once", err, time.Since(start))
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "absent"))
	timed("unreachable bus", ErrNoBus)

	// A bus with no Secret Service.
	bus := privateBus(t)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", bus)
	timed("no Secret Service", ErrNoSecretService)
	start = time.Now()
	if _, err := st.Get(ctx, "k"); !errors.Is(err, ErrNoSecretService) || time.Since(start) > 5*time.Second {
		t.Errorf("Store.Get with no Secret Service = %v after %v", err, time.Since(start))
	}

	// A locked collection.
	for _, kv := range d.Env() {
		if k, v, ok := cut(kv); ok && k == "DBUS_SESSION_BUS_ADDRESS" {
			t.Setenv(k, v)
			lock(t, v)
		}
	}
	timed("locked", ErrKeyringLocked)
}

func cut(kv string) (string, string, bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return "", "", false
}

// privateBus starts a D-Bus session bus with nothing on it.
func privateBus(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "bus")
	// No service directories: nothing can be activated on this bus.
	conf := `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path=` + sock + `</listen>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
</busconfig>`
	if err := os.WriteFile(filepath.Join(dir, "bus.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dbus-daemon", "--config-file="+filepath.Join(dir, "bus.conf"), "--nofork", "--nopidfile")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "unix:path=" + sock
}

// lock locks the login collection through the Secret Service.
func lock(t *testing.T, addr string) {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var locked []dbus.ObjectPath
	var prompt dbus.ObjectPath
	if err := conn.Object(secretsName, "/org/freedesktop/secrets").Call("org.freedesktop.Secret.Service.Lock", 0,
		[]dbus.ObjectPath{loginPath}).Store(&locked, &prompt); err != nil {
		t.Fatal(err)
	}
}

package keyringtest

import (
	"errors"
	"os"
	"testing"

	"github.com/zalando/go-keyring"
)

func TestStartRoundTripKill(t *testing.T) {
	d := New(t)
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") != d.Address {
		t.Fatal("DBUS_SESSION_BUS_ADDRESS not set to the private bus")
	}
	if err := keyring.Set("svc", "user", "secret"); err != nil {
		t.Fatal(err)
	}
	if got, err := keyring.Get("svc", "user"); err != nil || got != "secret" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if _, err := os.Stat(d.Home + "/.local/share/keyrings/login.keyring"); err != nil {
		t.Fatalf("login keyring not under the private HOME: %v", err)
	}
	if err := d.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.Get("svc", "user"); err == nil || errors.Is(err, keyring.ErrNotFound) {
		t.Fatalf("Get after Kill = %v, want a D-Bus error", err)
	}
}

func TestCloseRestoresEnvAndKills(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
	d := New(t)
	pid := d.bus.Process.Pid
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if got := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); got != "unix:path=/nonexistent" {
		t.Fatalf("env not restored: %q", got)
	}
	if p, _ := os.FindProcess(pid); p != nil {
		if err := p.Signal(nil); err == nil {
			t.Fatalf("dbus-daemon %d still running after Close", pid)
		}
	}
	if _, err := os.Stat(d.Dir); !os.IsNotExist(err) {
		t.Fatalf("temp dir left behind: %v", err)
	}
}

//go:build (linux || freebsd || openbsd || netbsd || dragonfly) && !android

package keyring

import (
	"context"
	"os"
	"slices"
	"time"

	"github.com/godbus/dbus/v5"
)

// checkBound bounds each step of check.
const checkBound = 2 * time.Second

const (
	secretsName = "org.freedesktop.secrets"
	loginPath   = dbus.ObjectPath("/org/freedesktop/secrets/collection/login")
	defaultPath = dbus.ObjectPath("/org/freedesktop/secrets/aliases/default")
)

// check is Check where the keyring is the Secret Service over D-Bus.
func check(ctx context.Context) error {
	addr := os.Getenv("DBUS_SESSION_BUS_ADDRESS")
	if addr == "" {
		return unavailable(reasonNoBus)
	}
	cctx, cancel := context.WithTimeout(ctx, checkBound)
	defer cancel()
	// Only definite answers are reported: a bus that refuses the
	// connection, a bus that says the name has no owner and cannot be
	// started, a collection that says it is locked. A step that runs out of
	// time (a loaded machine, a slow daemon) tells nothing: Check returns
	// nil and the store's own timeouts apply.
	conn, err := dbus.Connect(addr, dbus.WithContext(cctx))
	if err != nil {
		if cctx.Err() != nil {
			return nil
		}
		return unavailable(reasonNoBus)
	}
	defer conn.Close()
	var owned bool
	if err := conn.BusObject().CallWithContext(cctx, "org.freedesktop.DBus.NameHasOwner", 0, secretsName).Store(&owned); err != nil {
		if cctx.Err() != nil {
			return nil
		}
		return unavailable(reasonNoBus)
	}
	if !owned {
		var names []string
		if err := conn.BusObject().CallWithContext(cctx, "org.freedesktop.DBus.ListActivatableNames", 0).Store(&names); err != nil {
			if cctx.Err() != nil {
				return nil
			}
			return unavailable(reasonNoSecretService)
		}
		if !slices.Contains(names, secretsName) {
			return unavailable(reasonNoSecretService)
		}
	}
	// Asking a property starts an activatable service.
	sctx, cancel2 := context.WithTimeout(ctx, checkBound)
	defer cancel2()
	for _, path := range []dbus.ObjectPath{loginPath, defaultPath} {
		var v dbus.Variant
		err := conn.Object(secretsName, path).CallWithContext(sctx, "org.freedesktop.DBus.Properties.Get", 0,
			"org.freedesktop.Secret.Collection", "Locked").Store(&v)
		if err != nil {
			if sctx.Err() != nil {
				return nil // slow to answer: no verdict
			}
			continue // no such collection: try the next
		}
		if locked, _ := v.Value().(bool); locked {
			return unavailable(reasonLocked)
		}
		return nil
	}
	return nil // no collection yet: the first write creates one
}

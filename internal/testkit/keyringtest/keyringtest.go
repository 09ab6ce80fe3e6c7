// Package keyringtest runs a real, private Secret Service for tests: its own
// D-Bus session bus (dbus-daemon) and gnome-keyring-daemon with an unlocked
// "login" collection, both children of the test process, with HOME and the
// XDG directories pointed into a temporary directory.
//
// Start points DBUS_SESSION_BUS_ADDRESS of the current process at the private
// bus, so github.com/zalando/go-keyring talks to it; [Daemon.Env] gives the
// environment for subprocesses (a re-executed test binary, the CLI). The bus
// has no service activation, so a killed keyring daemon stays dead instead of
// being restarted behind the test's back.
//
// Tests call [New]; TestMain can call [Start] and [Daemon.Close]. Nothing in
// this package is safe for concurrent use by several goroutines, and only one
// Daemon should be running at a time because the environment is process-wide.
package keyringtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/zalando/go-keyring"
)

// ErrMissing is returned by Start when dbus-daemon or gnome-keyring-daemon
// is not installed.
var ErrMissing = errors.New("keyringtest: dbus-daemon or gnome-keyring-daemon not installed")

// Daemon is a running private session bus with a gnome-keyring Secret
// Service on it. It is not safe for concurrent use.
type Daemon struct {
	// Dir is the temporary root; HOME and the XDG directories are under it.
	Dir string
	// Home is the HOME directory given to the keyring daemon.
	Home string
	// Address is the D-Bus address of the private session bus.
	Address string

	bus, keyring *exec.Cmd
	busDone      chan struct{}
	keyringDone  chan struct{}
	env          []string
	prevAddr     string
	hadPrevAddr  bool
	closed       bool
}

const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// Password is the password of the login keyring created by Start.
const Password = "oauthsafe-test-keyring"

// New starts a Daemon for the test and closes it in t.Cleanup. It skips the
// test when the programs are absent, and fails it instead when the
// environment variable CI is set.
func New(t testing.TB) *Daemon {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := Start(ctx)
	if errors.Is(err, ErrMissing) {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v (CI is set, so this is a failure)", err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("keyringtest: close: %v", err)
		}
	})
	return d
}

// Start launches the bus and the keyring daemon, points this process's
// DBUS_SESSION_BUS_ADDRESS at the bus, and waits until the Secret Service
// stores and returns a probe secret in the login collection. The caller must
// call Close, which also restores the previous DBUS_SESSION_BUS_ADDRESS.
func Start(ctx context.Context) (d *Daemon, err error) {
	busPath, err1 := exec.LookPath("dbus-daemon")
	gkPath, err2 := exec.LookPath("gnome-keyring-daemon")
	if err1 != nil || err2 != nil {
		return nil, ErrMissing
	}
	// A short root keeps the socket path under the 108-byte sun_path limit.
	dir, err := os.MkdirTemp("", "oauthsafe-kt-")
	if err != nil {
		return nil, fmt.Errorf("keyringtest: %w", err)
	}
	d = &Daemon{Dir: dir, Home: filepath.Join(dir, "home")}
	d.prevAddr, d.hadPrevAddr = os.LookupEnv("DBUS_SESSION_BUS_ADDRESS")
	defer func() {
		if err != nil {
			_ = d.Close()
			d = nil
		}
	}()
	dirs, err := d.makeDirs()
	if err != nil {
		return nil, err
	}
	if err := d.startBus(ctx, busPath, dirs); err != nil {
		return nil, err
	}
	if err := d.startKeyring(gkPath, dirs); err != nil {
		return nil, err
	}
	if err := os.Setenv("DBUS_SESSION_BUS_ADDRESS", d.Address); err != nil {
		return nil, fmt.Errorf("keyringtest: %w", err)
	}
	if err := d.waitReady(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// makeDirs creates HOME and the XDG directories under d.Dir and returns
// them by variable name.
func (d *Daemon) makeDirs() (map[string]string, error) {
	dirs := map[string]string{
		"HOME":            d.Home,
		"XDG_RUNTIME_DIR": filepath.Join(d.Dir, "run"),
		"XDG_DATA_HOME":   filepath.Join(d.Home, ".local", "share"),
		"XDG_CONFIG_HOME": filepath.Join(d.Home, ".config"),
		"XDG_CACHE_HOME":  filepath.Join(d.Home, ".cache"),
		"XDG_STATE_HOME":  filepath.Join(d.Home, ".local", "state"),
	}
	for _, p := range dirs {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return nil, fmt.Errorf("keyringtest: %w", err)
		}
	}
	return dirs, nil
}

// startBus starts the private session bus (the program at busPath, on a
// socket in d.Dir) and sets d.Address from what it prints.
func (d *Daemon) startBus(ctx context.Context, busPath string, dirs map[string]string) error {
	conf := filepath.Join(d.Dir, "bus.conf")
	sock := filepath.Join(d.Dir, "bus")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(busConfig, sock)), 0o600); err != nil {
		return fmt.Errorf("keyringtest: %w", err)
	}
	d.bus = exec.Command(busPath, "--config-file="+conf, "--nofork", "--print-address=1")
	d.bus.Env = childEnv(dirs, "")
	d.bus.Stderr = io.Discard
	setDeathSignal(d.bus)
	out, err := d.bus.StdoutPipe()
	if err != nil {
		return fmt.Errorf("keyringtest: %w", err)
	}
	if err := d.bus.Start(); err != nil {
		return fmt.Errorf("keyringtest: start dbus-daemon: %w", err)
	}
	d.busDone = reap(d.bus)
	addrCh := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addrCh <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case d.Address = <-addrCh:
	case <-ctx.Done():
		return fmt.Errorf("keyringtest: dbus-daemon did not print its address: %w", ctx.Err())
	}
	if d.Address == "" {
		return errors.New("keyringtest: dbus-daemon exited without an address")
	}
	return nil
}

// startKeyring starts the keyring daemon (the program at gkPath) on the
// bus, unlocked with the password on stdin, and sets d.env.
func (d *Daemon) startKeyring(gkPath string, dirs map[string]string) error {
	d.env = childEnv(dirs, d.Address)
	d.keyring = exec.Command(gkPath, "--unlock", "--components=secrets", "--foreground")
	d.keyring.Env = d.env
	d.keyring.Stdin = strings.NewReader(Password)
	d.keyring.Stdout = io.Discard
	d.keyring.Stderr = io.Discard
	setDeathSignal(d.keyring)
	if err := d.keyring.Start(); err != nil {
		return fmt.Errorf("keyringtest: start gnome-keyring-daemon: %w", err)
	}
	d.keyringDone = reap(d.keyring)
	return nil
}

// childEnv is the current environment with the given directories, the bus
// address and no display (so no unlock prompt can ever appear).
func childEnv(dirs map[string]string, addr string) []string {
	drop := map[string]bool{"DISPLAY": true, "WAYLAND_DISPLAY": true, "DBUS_SESSION_BUS_ADDRESS": true}
	for k := range dirs {
		drop[k] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	for k, v := range dirs {
		env = append(env, k+"="+v)
	}
	if addr != "" {
		env = append(env, "DBUS_SESSION_BUS_ADDRESS="+addr)
	}
	return env
}

func reap(cmd *exec.Cmd) chan struct{} {
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	return done
}

// waitReady waits until the login collection exists and a probe secret
// survives a go-keyring round trip.
func (d *Daemon) waitReady(ctx context.Context) error {
	var last error
	for {
		last = d.probe()
		if last == nil {
			return nil
		}
		select {
		case <-d.keyringDone:
			return errors.New("keyringtest: gnome-keyring-daemon exited during startup")
		case <-ctx.Done():
			return fmt.Errorf("keyringtest: Secret Service not ready: %v: %w", last, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (d *Daemon) probe() error {
	done := make(chan error, 1)
	go func() {
		if err := checkLoginCollection(d.Address); err != nil {
			done <- err
			return
		}
		const svc, user, val = "oauthsafe-keyringtest", "probe", "probe-value"
		if err := keyring.Set(svc, user, val); err != nil {
			done <- err
			return
		}
		got, err := keyring.Get(svc, user)
		if err == nil && got != val {
			err = errors.New("keyringtest: probe read back a different value")
		}
		if err == nil {
			err = keyring.Delete(svc, user)
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		return errors.New("keyringtest: probe timed out")
	}
}

// checkLoginCollection verifies over D-Bus that the collection go-keyring
// uses ("login") exists and is unlocked.
func checkLoginCollection(addr string) error {
	conn, err := dbus.Connect(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	const login = dbus.ObjectPath("/org/freedesktop/secrets/collection/login")
	v, err := conn.Object("org.freedesktop.secrets", "/org/freedesktop/secrets").
		GetProperty("org.freedesktop.Secret.Service.Collections")
	if err != nil {
		return err
	}
	paths, _ := v.Value().([]dbus.ObjectPath)
	found := false
	for _, p := range paths {
		found = found || p == login
	}
	if !found {
		return fmt.Errorf("keyringtest: no login collection (have %v)", paths)
	}
	locked, err := conn.Object("org.freedesktop.secrets", login).
		GetProperty("org.freedesktop.Secret.Collection.Locked")
	if err != nil {
		return err
	}
	if b, _ := locked.Value().(bool); b {
		return errors.New("keyringtest: login collection is locked")
	}
	return nil
}

// Env returns the environment for a subprocess that should use this
// keyring: the current environment with DBUS_SESSION_BUS_ADDRESS, HOME and
// the XDG directories pointing at the private ones.
func (d *Daemon) Env() []string {
	return append([]string(nil), d.env...)
}

// Kill kills the keyring daemon with SIGKILL and waits for it to exit,
// leaving the bus running: calls to the Secret Service then fail.
func (d *Daemon) Kill() error {
	if err := d.keyring.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("keyringtest: kill: %w", err)
	}
	<-d.keyringDone
	return nil
}

// Close kills both daemons, waits for them, removes the temporary directory
// and restores DBUS_SESSION_BUS_ADDRESS. Calling it twice is harmless.
func (d *Daemon) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	for _, c := range []struct {
		cmd  *exec.Cmd
		done chan struct{}
	}{{d.keyring, d.keyringDone}, {d.bus, d.busDone}} {
		if c.cmd == nil || c.cmd.Process == nil || c.done == nil {
			continue
		}
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	if d.hadPrevAddr {
		os.Setenv("DBUS_SESSION_BUS_ADDRESS", d.prevAddr)
	} else {
		os.Unsetenv("DBUS_SESSION_BUS_ADDRESS")
	}
	return os.RemoveAll(d.Dir)
}

// EmptyBus starts a private D-Bus session bus with nothing on it and no
// service activation (so no Secret Service can appear), stopped when the
// test ends, and returns its address. It skips or fails like New when
// dbus-daemon is missing.
func EmptyBus(t testing.TB) string {
	t.Helper()
	busPath, err := exec.LookPath("dbus-daemon")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(ErrMissing)
		}
		t.Skip(ErrMissing)
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "bus")
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(busConfig, sock)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(busPath, "--config-file="+conf, "--nofork", "--nopidfile")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; i < 250; i++ {
		if _, err := os.Stat(sock); err == nil {
			return "unix:path=" + sock
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("keyringtest: the empty bus did not start")
	return ""
}

// Lock locks the login collection, as a screen lock or a timeout would.
func (d *Daemon) Lock() error {
	conn, err := dbus.Connect(d.Address)
	if err != nil {
		return err
	}
	defer conn.Close()
	var locked []dbus.ObjectPath
	var prompt dbus.ObjectPath
	return conn.Object("org.freedesktop.secrets", "/org/freedesktop/secrets").Call("org.freedesktop.Secret.Service.Lock", 0,
		[]dbus.ObjectPath{"/org/freedesktop/secrets/collection/login"}).Store(&locked, &prompt)
}

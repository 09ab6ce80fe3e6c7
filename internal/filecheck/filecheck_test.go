//go:build unix

package filecheck

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestStrengths: each kind accepts and refuses the modes, owners and file
// types its doc promises, before opening (a FIFO never blocks) and on the
// opened file; ReadFile bounds the size.
func TestStrengths(t *testing.T) {
	dir := t.TempDir()
	file := func(mode os.FileMode) string {
		f, err := os.CreateTemp(dir, "f")
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("content")
		f.Close()
		os.Chmod(f.Name(), mode)
		return f.Name()
	}
	cases := []struct {
		kind Kind
		mode os.FileMode
		ok   bool
	}{
		{Secret, 0o600, true}, {Secret, 0o400, true}, {Secret, 0o640, false}, {Secret, 0o604, false}, {Secret, 0o644, false},
		{Trust, 0o644, true}, {Trust, 0o600, true}, {Trust, 0o444, true}, {Trust, 0o664, false}, {Trust, 0o646, false},
	}
	for _, tc := range cases {
		b, err := ReadFile(file(tc.mode), tc.kind, 100)
		var fe *Error
		if tc.ok && (err != nil || string(b) != "content") {
			t.Errorf("kind %d mode %04o: %v", tc.kind, tc.mode, err)
		}
		if !tc.ok && !errors.As(err, &fe) {
			t.Errorf("kind %d mode %04o: %v, want an *Error", tc.kind, tc.mode, err)
		}
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []Kind{Secret, Trust} {
		for _, p := range []string{fifo, dir} {
			var fe *Error
			if _, err := Open(p, k); !errors.As(err, &fe) {
				t.Errorf("kind %d, %s: %v, want an *Error", k, p, err)
			}
		}
		if _, err := ReadFile(file(0o600), k, 3); !errors.Is(err, ErrTooLarge) {
			t.Errorf("kind %d: an oversized file: %v", k, err)
		}
		link := filepath.Join(dir, "link")
		os.Remove(link)
		os.Symlink(file(0o666), link)
		var fe *Error
		if _, err := Open(link, k); !errors.As(err, &fe) {
			t.Errorf("kind %d: a link to a 0666 file: %v", k, err)
		}
	}
	// Owners: only root can give a file away.
	if os.Getuid() != 0 {
		t.Log("not root: owner cases skipped")
		return
	}
	other := file(0o600)
	if err := os.Chown(other, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	for _, k := range []Kind{Secret, Trust} {
		var fe *Error
		if _, err := Open(other, k); !errors.As(err, &fe) {
			t.Errorf("kind %d: another user's file: %v", k, err)
		}
	}
}

// TestSwappedForFIFO: a FIFO put in place of the checked file between the
// check and the open neither blocks the open nor is read: Open returns an
// *Error at once.
func TestSwappedForFIFO(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret")
	if err := os.WriteFile(path, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	beforeOpen = func(p string) {
		if err := os.Remove(p); err != nil {
			t.Error(err)
		}
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Error(err)
		}
	}
	defer func() { beforeOpen = nil }()
	done := make(chan error, 1)
	go func() {
		f, err := Open(path, Secret)
		if f != nil {
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		var fe *Error
		if !errors.As(err, &fe) {
			t.Fatalf("Open of a swapped-in FIFO: %v, want an *Error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Open blocked on a FIFO swapped in after the check")
	}
}

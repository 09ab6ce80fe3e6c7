package filelock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLockExcludesAndHonoursContext(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "locks")
	unlock, err := Lock(context.Background(), dir, "k")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("lock dir mode = %v, %v; want 0700", fi.Mode(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Lock(ctx, dir, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Lock = %v, want DeadlineExceeded while held", err)
	}
	// A different key is independent.
	u2, err := Lock(context.Background(), dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	u2()
	got := make(chan error, 1)
	go func() {
		u, err := Lock(context.Background(), dir, "k")
		if err == nil {
			err = u()
		}
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("Lock after unlock = %v", err)
	}
	if err := unlock(); err == nil {
		t.Fatal("double unlock not reported")
	}
}

func TestLockRefusesSharedDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "locks")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	if _, err := Lock(context.Background(), dir, "k"); !errors.Is(err, ErrInsecure) {
		t.Fatalf("Lock in a 0777 dir = %v, want ErrInsecure", err)
	}
}

// TestRuntimeDirIsPrivate: the lock dir is a 0700 directory of ours under
// the lock root, and one that another user could have made (here: too
// open) is refused.
func TestRuntimeDirIsPrivate(t *testing.T) {
	root := t.TempDir()
	defer func(old string) { lockRoot = old }(lockRoot)
	lockRoot = root
	dir, err := RuntimeDir()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(filepath.Dir(dir)) != root {
		t.Fatalf("RuntimeDir = %s, want under %s", dir, root)
	}
	fi, err := os.Stat(filepath.Dir(dir))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("parent mode %v, %v", fi.Mode(), err)
	}
	unlock, err := Lock(context.Background(), dir, "k")
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	os.Chmod(filepath.Dir(dir), 0o777)
	if _, err := RuntimeDir(); !errors.Is(err, ErrInsecure) {
		t.Fatalf("RuntimeDir with an open parent = %v, want ErrInsecure", err)
	}
}

package secret_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

const fileSecret = "file-secret-7d1e9c0b5a"

func writeSecretFile(t *testing.T, mode os.FileMode, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "client_secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // WriteFile's mode is masked by umask
		t.Fatal(err)
	}
	return p
}

func TestFromFilePermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		_, err := secret.FromFile(writeSecretFile(t, 0o600, fileSecret))
		if !errors.Is(err, strictnet.ErrPolicy) {
			t.Fatalf("windows: err = %v, want a refusal", err)
		}
		return
	}
	cases := []struct {
		name string
		mode os.FileMode
		ok   bool
	}{
		{"0600 accepted", 0o600, true},
		{"0400 accepted", 0o400, true},
		{"0644 refused", 0o644, false},
		{"0640 refused", 0o640, false},
		{"0604 refused", 0o604, false},
		{"0660 refused", 0o660, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeSecretFile(t, tc.mode, "  "+fileSecret+"\n")
			s, err := secret.FromFile(p)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if s.Reveal() != fileSecret {
					t.Fatalf("secret %q", s.Reveal())
				}
				return
			}
			if !errors.Is(err, secret.ErrSource) || !errors.Is(err, strictnet.ErrPolicy) {
				t.Fatalf("err = %v, want ErrSource and ErrPolicy", err)
			}
			if !s.IsZero() || strings.Contains(err.Error(), fileSecret) {
				t.Fatalf("refused file leaked: %v", err)
			}
			if !strings.Contains(err.Error(), "0600") {
				t.Fatalf("error does not say how to fix it: %v", err)
			}
		})
	}
}

func TestFromFileRefusals(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("FromFile always refuses on Windows (covered by TestFromFilePermissions)")
	}
	t.Run("missing", func(t *testing.T) {
		_, err := secret.FromFile(filepath.Join(t.TempDir(), "nope"))
		if !errors.Is(err, secret.ErrSource) || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		_, err := secret.FromFile(writeSecretFile(t, 0o600, " \n"))
		if !errors.Is(err, secret.ErrSource) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		_, err := secret.FromFile(writeSecretFile(t, 0o600, strings.Repeat("x", 64<<10+1)))
		if !errors.Is(err, secret.ErrSource) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		d := filepath.Join(t.TempDir(), "dir")
		os.Mkdir(d, 0o700)
		_, err := secret.FromFile(d)
		if !errors.Is(err, strictnet.ErrPolicy) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("symlink to a 0644 file", func(t *testing.T) {
		target := writeSecretFile(t, 0o644, fileSecret)
		link := filepath.Join(t.TempDir(), "link")
		if err := os.Symlink(target, link); err != nil {
			t.Skip(err)
		}
		if _, err := secret.FromFile(link); !errors.Is(err, strictnet.ErrPolicy) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("fifo does not block", func(t *testing.T) {
		mkfifo, err := exec.LookPath("mkfifo")
		if err != nil {
			t.Skip("mkfifo not installed")
		}
		p := filepath.Join(t.TempDir(), "fifo")
		if out, err := exec.Command(mkfifo, "-m", "600", p).CombinedOutput(); err != nil {
			t.Fatalf("mkfifo: %v %s", err, out)
		}
		done := make(chan error, 1)
		go func() { _, err := secret.FromFile(p); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, strictnet.ErrPolicy) {
				t.Fatalf("err = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("FromFile blocked on a FIFO")
		}
	})
	t.Run("owned by another user", func(t *testing.T) {
		p := writeSecretFile(t, 0o600, fileSecret)
		if err := os.Chown(p, 65534, -1); err != nil {
			t.Skipf("cannot give the file away (needs root): %v", err)
		}
		_, err := secret.FromFile(p)
		if !errors.Is(err, strictnet.ErrPolicy) || !strings.Contains(err.Error(), "owned by uid 65534") {
			t.Fatalf("err = %v", err)
		}
	})
}

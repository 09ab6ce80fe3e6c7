//go:build unix

package secret

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/oauthsafe/oauthsafe/strictnet"
)

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func writeKeyFile(t *testing.T, mode os.FileMode, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "client-key.pem")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func pkcs8(t *testing.T, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestPrivateKeyFromFileChecked: PrivateKeyFromFile loads an RSA, ECDSA
// or Ed25519 key from PKCS #8, SEC 1 or PKCS #1 PEM into a crypto.Signer
// that signs, only from a file that passes the secret-file checks (mode
// 0600/0400, a regular file, no FIFO: refused as ErrSource and ErrPolicy
// without blocking); a file with no usable key is errPrivateKey; no error
// holds key material.
func TestPrivateKeyFromFileChecked(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	cert := pemBlock("CERTIFICATE", []byte("not parsed"))
	good := []struct {
		name string
		file []byte
		pub  crypto.PublicKey
	}{
		{"pkcs8 rsa", pemBlock("PRIVATE KEY", pkcs8(t, rsaKey)), rsaKey.Public()},
		{"pkcs8 ecdsa", pemBlock("PRIVATE KEY", pkcs8(t, ecKey)), ecKey.Public()},
		{"pkcs8 ed25519", pemBlock("PRIVATE KEY", pkcs8(t, edKey)), edKey.Public()},
		{"sec1 ecdsa with a certificate", append(cert, pemBlock("EC PRIVATE KEY", ecDER)...), ecKey.Public()},
		{"pkcs1 rsa", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), rsaKey.Public()},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range []os.FileMode{0o600, 0o400} {
				k, err := PrivateKeyFromFile(writeKeyFile(t, mode, tc.file))
				if err != nil {
					t.Fatalf("mode %04o: %v", mode, err)
				}
				if !k.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(tc.pub) {
					t.Fatal("another key was loaded")
				}
				h := sha256.Sum256([]byte("assertion"))
				var opts crypto.SignerOpts = crypto.SHA256
				if _, ok := k.(ed25519.PrivateKey); ok {
					opts = crypto.Hash(0)
					h = [32]byte{}
				}
				if _, err := k.Sign(rand.Reader, h[:], opts); err != nil {
					t.Fatalf("the loaded key does not sign: %v", err)
				}
			}
		})
	}

	secretBits := []string{base64.StdEncoding.EncodeToString(pkcs8(t, ecKey))[:40], "PRIVATE KEY-----\nMI"}
	noSecret := func(t *testing.T, err error) {
		t.Helper()
		for _, s := range secretBits {
			if strings.Contains(err.Error(), s) {
				t.Fatalf("the error holds key material: %v", err)
			}
		}
	}
	keyFile := pemBlock("PRIVATE KEY", pkcs8(t, ecKey))
	t.Run("file checks", func(t *testing.T) {
		for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o606} {
			_, err := PrivateKeyFromFile(writeKeyFile(t, mode, keyFile))
			if !errors.Is(err, ErrSource) || !errors.Is(err, strictnet.ErrPolicy) {
				t.Errorf("mode %04o: %v, want ErrSource and ErrPolicy", mode, err)
			} else {
				noSecret(t, err)
			}
		}
		dir := t.TempDir()
		if _, err := PrivateKeyFromFile(dir); !errors.Is(err, strictnet.ErrPolicy) {
			t.Errorf("a directory: %v", err)
		}
		fifo := filepath.Join(dir, "fifo")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := PrivateKeyFromFile(fifo); !errors.Is(err, strictnet.ErrPolicy) { // would block if opened
			t.Errorf("a FIFO: %v", err)
		}
		if _, err := PrivateKeyFromFile(filepath.Join(dir, "missing")); !errors.Is(err, ErrSource) || errors.Is(err, strictnet.ErrPolicy) {
			t.Errorf("a missing file: %v", err)
		}
		link := filepath.Join(dir, "link")
		if err := os.Symlink(writeKeyFile(t, 0o644, keyFile), link); err != nil {
			t.Fatal(err)
		}
		if _, err := PrivateKeyFromFile(link); !errors.Is(err, strictnet.ErrPolicy) {
			t.Errorf("a link to a 0644 key: %v", err)
		}
	})

	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	x25519, _ := ecdh.X25519().GenerateKey(rand.Reader)
	bad := map[string][]byte{
		"empty":        nil,
		"no PEM":       []byte("just text"),
		"certificate":  cert,
		"encrypted":    pemBlock("ENCRYPTED PRIVATE KEY", []byte{1, 2, 3}),
		"headers":      pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}),
		"two keys":     append(append([]byte{}, keyFile...), keyFile...),
		"malformed":    pemBlock("PRIVATE KEY", []byte("garbage")),
		"rsa 1024":     pemBlock("PRIVATE KEY", pkcs8(t, small)),
		"p-224":        pemBlock("PRIVATE KEY", pkcs8(t, p224)),
		"x25519":       pemBlock("PRIVATE KEY", pkcs8(t, x25519)),
		"sec1 as pkcs": pemBlock("PRIVATE KEY", ecDER),
	}
	for name, b := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := PrivateKeyFromFile(writeKeyFile(t, 0o600, b))
			if !errors.Is(err, errPrivateKey) || !errors.Is(err, ErrSource) {
				t.Fatalf("%v, want errPrivateKey", err)
			}
			if name == "rsa 1024" && !errors.Is(err, strictnet.ErrPolicy) {
				t.Fatalf("a small RSA key: %v, want ErrPolicy", err)
			}
			noSecret(t, err)
		})
	}
}

// FuzzParsePrivateKey: any bytes give a signer or an errPrivateKey error,
// never a panic.
func FuzzParsePrivateKey(f *testing.F) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	f.Add(pemBlock("PRIVATE KEY", der))
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	f.Add(pemBlock("EC PRIVATE KEY", sec1))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\n-----END ENCRYPTED PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := parsePrivateKey(b)
		if err != nil {
			if !errors.Is(err, errPrivateKey) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if k == nil || k.Public() == nil {
			t.Fatal("nil key without an error")
		}
	})
}

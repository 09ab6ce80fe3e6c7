package tokenstore_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/oauthsafe/oauthsafe/internal/testkit/storetest"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

const (
	envFilePath      = "OAUTHSAFE_XPROC_PATH"
	xprocPassphrase  = "cross-process test passphrase"
	childTestName    = "TestStoreTransactionChild"
	rotationsPerTest = 300
)

func openFile(t testing.TB) tokenstore.Store {
	return &tokenstore.EncryptedFile{Path: os.Getenv(envFilePath),
		Passphrase: func() ([]byte, error) { return []byte(xprocPassphrase), nil }}
}

// TestStoreTransactionChild is the children's body.
func TestStoreTransactionChild(t *testing.T) { storetest.Child(t, openFile) }

// TestStoreTransactionAcrossProcesses: N processes × M goroutines refresh
// one key for a few hundred rotations; exactly one token request per refresh
// token, none reused, no deadlock, and a process SIGKILLed inside the
// transaction releases it. Memory cannot span processes: it runs the same
// check with goroutines only.
func TestStoreTransactionAcrossProcesses(t *testing.T) {
	t.Run("Memory", func(t *testing.T) {
		storetest.Goroutines(t, &tokenstore.Memory{}, 12, rotationsPerTest)
	})
	t.Run("EncryptedFile", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "store", "tokens.enc")
		t.Setenv(envFilePath, path)
		storetest.CrossProcess(t, storetest.Config{Open: openFile, ChildTest: childTestName,
			Env: []string{envFilePath + "=" + path}, Rotations: rotationsPerTest})
	})
}

// TestCrossProcessRefresh (the accepted criterion): two processes that
// each need an access token refresh once each, with different refresh
// tokens; none is sent twice, each ends with a valid token, and the store
// holds the final refresh token.
func TestCrossProcessRefresh(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store", "tokens.enc")
	t.Setenv(envFilePath, path)
	storetest.CrossProcess(t, storetest.Config{Open: openFile, ChildTest: childTestName,
		Env: []string{envFilePath + "=" + path}, Procs: 2, Goroutines: 1, Rotations: 2})
}

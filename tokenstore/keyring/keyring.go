// Package keyring is a tokenstore.Store in the OS keyring (macOS Keychain,
// Windows Credential Manager, the Secret Service over D-Bus on Linux and
// BSD). It is the only package of this module that links go-keyring and
// D-Bus: a program that does not import it carries neither.
//
// Where to start: a desktop or CLI tool gives a &Store{Service: "my-tool"}
// to oauthclient's Client.TokenSource (with tokenstore.ProfileKey as the
// key) and keeps the login there; Check says, within seconds, why a
// machine has no usable keyring (no D-Bus session, no Secret Service, a
// locked keyring: an [*UnavailableError]), so that the tool can offer
// tokenstore.EncryptedFile.
package keyring

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/internal/filelock"
	"github.com/oauthsafe/oauthsafe/internal/storelimit"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	gokeyring "github.com/zalando/go-keyring"
)

// Store is a tokenstore.Store in the OS keyring (macOS Keychain, Windows Credential
// Manager, the Secret Service on Linux and BSD) through
// github.com/zalando/go-keyring.
//
// Every keyring call runs under ctx and a timeout; a keyring that is absent,
// fails or does not answer in time gives an error that satisfies
// errors.Is(err, tokenstore.ErrUnavailable). On Linux and the BSDs, until
// the keyring has answered once, each call first runs Check, so that no
// D-Bus session or no Secret Service (an [*UnavailableError]) is
// reported within about 2 s rather than after the timeout. There is never a fallback to another
// store. A keyring call that timed out may still complete later inside the
// OS service; Store does not wait for it.
//
// Values that do not fit in one entry (see ChunkSize) are split into chunks
// under a fresh generation id; a small manifest entry, written last, names
// the generation, chunk count, length and SHA-256. Readers verify the hash,
// so they see either the old or the new value, never a mix.
//
// Update excludes with a file lock per key (flock on unix, LockFileEx on
// Windows) in LockDir, a per-user directory of mode 0700 that is the same
// for every process of the user whatever its environment (a terminal, cron,
// a systemd unit): goroutines and processes of one user on one machine take
// turns, and the OS releases the lock of a process that dies. Waiting ends
// with tokenstore.ErrLocked when ctx ends or after LockTimeout. Tx.Put
// returns once the keyring service has stored the value.
//
// The zero value is ready to use. A Store is safe for concurrent use and
// must not be copied after first use.
type Store struct {
	// Service is the keyring service name. "" means "oauthsafe".
	Service string
	// Timeout bounds each keyring call once the keyring has answered at
	// least once. Zero means 5 seconds.
	Timeout time.Duration
	// UnlockTimeout bounds keyring calls until the keyring has answered
	// once, when the OS may be showing an unlock prompt. Zero means 2
	// minutes.
	UnlockTimeout time.Duration
	// ChunkSize is the largest string stored in one keyring entry. Zero
	// means a per-platform default: 2,560 on Windows (the credential blob
	// limit), 2,400 on macOS (the security command line limit leaves about
	// 3,000 before go-keyring's base64 encoding), and 2,048 elsewhere so
	// that chunking is exercised everywhere. Values below 256 are raised
	// to 256.
	ChunkSize int
	// LockDir is the directory of the per-key lock files. "" means one
	// directory per user whatever the environment, so that a terminal, a
	// cron job, a systemd unit and the CLI agent exclude each other:
	// /tmp/oauthsafe-<uid>/locks (checked to be ours and 0700), or
	// .cache/oauthsafe/run/locks under the home directory of the user
	// database when that path is taken by another user. XDG_RUNTIME_DIR,
	// TMPDIR and HOME are never read for it. Set LockDir only to the same
	// directory in every process that shares the keyring entries.
	LockDir string
	// LockTimeout bounds how long Update waits for the lock before it
	// returns tokenstore.ErrLocked. Zero means 30 seconds.
	LockTimeout time.Duration

	writeMu  sync.Mutex
	answered atomic.Bool
}

const (
	inlinePrefix   = "osk1:i:"
	manifestPrefix = "osk1:c:"
	minChunkSize   = 256
	maxGetAttempts = 4
)

func (k *Store) service() string {
	if k.Service == "" {
		return "oauthsafe"
	}
	return k.Service
}

func (k *Store) chunkSize() int {
	n := k.ChunkSize
	if n == 0 {
		switch runtime.GOOS {
		case "windows":
			n = 2560
		case "darwin", "ios":
			n = 2400
		default:
			n = 2048
		}
	}
	return max(n, minChunkSize)
}

// rawPerChunk is how many value bytes fit in one chunk after base64.
func (k *Store) rawPerChunk() int {
	return k.chunkSize() / 4 * 3
}

func (k *Store) timeout() time.Duration {
	if k.answered.Load() {
		if k.Timeout > 0 {
			return k.Timeout
		}
		return 5 * time.Second
	}
	if k.UnlockTimeout > 0 {
		return k.UnlockTimeout
	}
	return 2 * time.Minute
}

// call runs one blocking go-keyring operation in a goroutine and gives up
// when ctx or the timeout ends first. The result travels only over the
// channel, so an abandoned call cannot touch the caller's variables.
func (k *Store) call(ctx context.Context, op func() (string, error)) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("%w: %w", tokenstore.ErrUnavailable, err)
	}
	if !k.answered.Load() {
		// Until the keyring has answered: no bus or no Secret Service is
		// said at once, in words (never the D-Bus library's own error or
		// a start of dbus-launch). A locked keyring is left to the
		// desktop's unlock prompt, within UnlockTimeout.
		if err := Check(ctx); err != nil && reasonOf(err) != reasonLocked {
			return "", err
		}
	}
	d := k.timeout()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	type result struct {
		v   string
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := op()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		switch err := r.err; {
		case err == nil:
			k.answered.Store(true)
			return r.v, nil
		case errors.Is(err, gokeyring.ErrNotFound):
			k.answered.Store(true)
			return "", tokenstore.ErrNotFound
		case errors.Is(err, gokeyring.ErrSetDataTooBig):
			k.answered.Store(true)
			return "", fmt.Errorf("%w: the keyring refused the entry size", tokenstore.ErrTooLarge)
		default:
			return "", fmt.Errorf("%w: keyring: %w", tokenstore.ErrUnavailable, err)
		}
	case <-ctx.Done():
		return "", fmt.Errorf("%w: keyring did not answer within %v: %w", tokenstore.ErrUnavailable, d, ctx.Err())
	}
}

func (k *Store) get(ctx context.Context, user string) (string, error) {
	svc := k.service()
	return k.call(ctx, func() (string, error) { return gokeyring.Get(svc, user) })
}

func (k *Store) set(ctx context.Context, user, val string) error {
	svc := k.service()
	_, err := k.call(ctx, func() (string, error) { return "", gokeyring.Set(svc, user, val) })
	return err
}

func (k *Store) del(ctx context.Context, user string) error {
	svc := k.service()
	_, err := k.call(ctx, func() (string, error) { return "", gokeyring.Delete(svc, user) })
	if errors.Is(err, tokenstore.ErrNotFound) {
		return nil
	}
	return err
}

// manifest describes a chunked value.
type manifest struct {
	gen   string
	count int
	size  int
	sum   [32]byte
}

func (m manifest) String() string {
	return fmt.Sprintf("%s%s:%d:%d:%s", manifestPrefix, m.gen, m.count, m.size, hex.EncodeToString(m.sum[:]))
}

func chunkUser(key, gen string, i int) string {
	return key + ":" + gen + ":" + strconv.Itoa(i)
}

// parseEntry parses the main entry: an inline value or a manifest.
func parseEntry(s string, rawPerChunk int) (inline []byte, m *manifest, err error) {
	switch {
	case strings.HasPrefix(s, inlinePrefix):
		b, err := base64.StdEncoding.Strict().DecodeString(s[len(inlinePrefix):])
		if err != nil {
			return nil, nil, fmt.Errorf("%w: bad inline keyring value", tokenstore.ErrCorrupt)
		}
		return b, nil, nil
	case strings.HasPrefix(s, manifestPrefix):
		f := strings.Split(s[len(manifestPrefix):], ":")
		if len(f) != 4 || len(f[0]) != 32 || !isLowerHex(f[0]) || len(f[3]) != 64 || !isLowerHex(f[3]) {
			return nil, nil, fmt.Errorf("%w: bad keyring manifest", tokenstore.ErrCorrupt)
		}
		count, err1 := strconv.Atoi(f[1])
		size, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || size <= 0 || size > storelimit.MaxValueSize || count < 1 ||
			count != (size+rawPerChunk-1)/rawPerChunk {
			return nil, nil, fmt.Errorf("%w: bad keyring manifest", tokenstore.ErrCorrupt)
		}
		m := &manifest{gen: f[0], count: count, size: size}
		hex.Decode(m.sum[:], []byte(f[3]))
		return nil, m, nil
	default:
		return nil, nil, fmt.Errorf("%w: unknown keyring value format", tokenstore.ErrCorrupt)
	}
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// Get implements tokenstore.Store; it takes no lock. A chunked value whose chunks do not match the
// manifest, or vanish while being read, is re-read while a writer is
// changing it; if it stays inconsistent the error satisfies
// errors.Is(err, tokenstore.ErrCorrupt).
func (k *Store) Get(ctx context.Context, key string) ([]byte, error) {
	per := k.rawPerChunk()
	var last string
	var lastErr error
	for attempt := 0; attempt < maxGetAttempts; attempt++ {
		s, err := k.get(ctx, key)
		if err != nil {
			// An entry deleted between the search and the read inside
			// the Secret Service shows up as a D-Bus error, not as
			// tokenstore.ErrNotFound: try once more before giving up.
			if transient(err) && attempt == 0 {
				continue
			}
			return nil, err
		}
		inline, m, err := parseEntry(s, per)
		if err != nil {
			return nil, err
		}
		if m == nil {
			return inline, nil
		}
		v, err := k.readChunks(ctx, key, m, per)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, tokenstore.ErrCorrupt) && !transient(err) {
			return nil, err
		}
		if s == last {
			// The manifest did not move: the value really is damaged.
			return nil, err
		}
		last, lastErr = s, err
	}
	if lastErr == nil {
		lastErr = tokenstore.ErrUnavailable
	}
	return nil, fmt.Errorf("%w: keyring value kept changing while being read: %w", tokenstore.ErrCorrupt, lastErr)
}

// transient reports a keyring failure that was not a timeout, which a
// concurrent writer can cause.
func transient(err error) bool {
	return errors.Is(err, tokenstore.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) &&
		!errors.Is(err, context.Canceled)
}

func (k *Store) readChunks(ctx context.Context, key string, m *manifest, per int) ([]byte, error) {
	buf := make([]byte, 0, m.size)
	for i := 0; i < m.count; i++ {
		s, err := k.get(ctx, chunkUser(key, m.gen, i))
		if errors.Is(err, tokenstore.ErrNotFound) {
			return nil, fmt.Errorf("%w: keyring chunk missing", tokenstore.ErrCorrupt)
		}
		if err != nil {
			return nil, err
		}
		b, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil || len(b) > per || len(buf)+len(b) > m.size {
			return nil, fmt.Errorf("%w: bad keyring chunk", tokenstore.ErrCorrupt)
		}
		buf = append(buf, b...)
	}
	sum := sha256.Sum256(buf)
	if len(buf) != m.size || subtle.ConstantTimeCompare(sum[:], m.sum[:]) != 1 {
		return nil, fmt.Errorf("%w: keyring chunks do not match their manifest", tokenstore.ErrCorrupt)
	}
	return buf, nil
}

// put writes value under key. Values over storelimit.MaxValueSize give
// tokenstore.ErrTooLarge before anything is written.
func (k *Store) put(ctx context.Context, key string, value []byte) error {
	if len(value) > storelimit.MaxValueSize {
		return tokenstore.ErrTooLarge
	}
	k.writeMu.Lock()
	defer k.writeMu.Unlock()
	old, err := k.currentManifest(ctx, key)
	if err != nil {
		return err
	}
	enc := inlinePrefix + base64.StdEncoding.EncodeToString(value)
	if len(enc) <= k.chunkSize() {
		if err := k.set(ctx, key, enc); err != nil {
			return err
		}
	} else {
		per := k.rawPerChunk()
		var g [16]byte
		rand.Read(g[:])
		m := manifest{gen: hex.EncodeToString(g[:]), count: (len(value) + per - 1) / per,
			size: len(value), sum: sha256.Sum256(value)}
		for i := 0; i < m.count; i++ {
			part := value[i*per : min((i+1)*per, len(value))]
			if err := k.set(ctx, chunkUser(key, m.gen, i), base64.StdEncoding.EncodeToString(part)); err != nil {
				k.deleteChunks(ctx, key, &m, i)
				return err
			}
		}
		if err := k.set(ctx, key, m.String()); err != nil {
			k.deleteChunks(ctx, key, &m, m.count)
			return err
		}
	}
	if old != nil {
		// Best effort: a leftover old generation is never read.
		k.deleteChunks(ctx, key, old, old.count)
	}
	return nil
}

// currentManifest returns the manifest stored under key, or nil when the key
// is missing, inline or unreadable (a damaged entry is simply replaced).
func (k *Store) currentManifest(ctx context.Context, key string) (*manifest, error) {
	s, err := k.get(ctx, key)
	if errors.Is(err, tokenstore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	_, m, err := parseEntry(s, k.rawPerChunk())
	if err != nil {
		return nil, nil
	}
	return m, nil
}

func (k *Store) deleteChunks(ctx context.Context, key string, m *manifest, n int) error {
	var first error
	for i := 0; i < n; i++ {
		if err := k.del(ctx, chunkUser(key, m.gen, i)); err != nil && first == nil {
			first = err
			if errors.Is(err, tokenstore.ErrUnavailable) {
				return err
			}
		}
	}
	return first
}

// remove deletes key. The main entry goes first, so readers see
// tokenstore.ErrNotFound at once; then the chunks are removed.
func (k *Store) remove(ctx context.Context, key string) error {
	k.writeMu.Lock()
	defer k.writeMu.Unlock()
	m, err := k.currentManifest(ctx, key)
	if err != nil {
		return err
	}
	if err := k.del(ctx, key); err != nil {
		return err
	}
	if m != nil {
		return k.deleteChunks(ctx, key, m, m.count)
	}
	return nil
}

// Update implements tokenstore.Store.
func (k *Store) Update(ctx context.Context, key string, fn func(ctx context.Context, tx tokenstore.Tx) error) (err error) {
	dir := k.LockDir
	if dir == "" {
		var err error
		if dir, err = filelock.RuntimeDir(); err != nil {
			return err
		}
	}
	wait := k.LockTimeout
	if wait <= 0 {
		wait = 30 * time.Second
	}
	lctx, cancel := context.WithTimeout(ctx, wait)
	unlock, err := filelock.Lock(lctx, dir, "keyring\x00"+k.service()+"\x00"+key)
	cancel()
	if err != nil {
		if lctx.Err() != nil {
			return fmt.Errorf("%w: %w", tokenstore.ErrLocked, err)
		}
		return err
	}
	tx := &keyringTx{k: k, key: key}
	// Deferred, so that a panic in fn that the caller recovers from still
	// releases the lock.
	defer func() {
		tx.done = true
		if uerr := unlock(); uerr != nil {
			err = errors.Join(err, uerr)
		}
	}()
	return fn(ctx, tx)
}

var errTxDone = errors.New("tokenstore/keyring: transaction used after Update returned")

type keyringTx struct {
	k    *Store
	key  string
	done bool
}

func (tx *keyringTx) Get(ctx context.Context) ([]byte, error) {
	if tx.done {
		return nil, errTxDone
	}
	return tx.k.Get(ctx, tx.key)
}

func (tx *keyringTx) Put(ctx context.Context, value []byte) error {
	if tx.done {
		return errTxDone
	}
	return tx.k.put(ctx, tx.key, value)
}

func (tx *keyringTx) Delete(ctx context.Context) error {
	if tx.done {
		return errTxDone
	}
	return tx.k.remove(ctx, tx.key)
}

var _ tokenstore.Store = (*Store)(nil)

// Secret reads a value stored under service and user outside this Store's
// format, such as a client secret put there with the platform's tools
// (secret-tool store, security add-generic-password), for
// secret.FromReader. A missing entry matches
// tokenstore.ErrNotFound; a keyring that fails or does not answer within
// the default timeouts matches tokenstore.ErrUnavailable; an empty service
// or user is an error matching ErrConfig (package oauthsafe). The caller owns the
// returned bytes and should zero them after use. Safe for concurrent use.
func Secret(ctx context.Context, service, user string) ([]byte, error) {
	if service == "" || user == "" {
		return nil, cfgerr.New("tokenstore/keyring", "Secret: the keyring service and user must be set")
	}
	v, err := (&Store{Service: service}).get(ctx, user)
	if err != nil {
		return nil, err
	}
	return []byte(v), nil
}

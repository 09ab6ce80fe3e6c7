package tokenstore

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

	"github.com/zalando/go-keyring"
)

// Keyring is a Store in the OS keyring (macOS Keychain, Windows Credential
// Manager, the Secret Service on Linux and BSD) through
// github.com/zalando/go-keyring.
//
// Every keyring call runs under ctx and a timeout; a keyring that is absent,
// fails or does not answer in time gives an error that satisfies
// errors.Is(err, ErrUnavailable). There is never a fallback to another
// store. A keyring call that timed out may still complete later inside the
// OS service; Keyring does not wait for it.
//
// Values that do not fit in one entry (see ChunkSize) are split into chunks
// under a fresh generation id; a small manifest entry, written last, names
// the generation, chunk count, length and SHA-256. Readers verify the hash,
// so they see either the old or the new value, never a mix. Writers within
// one Keyring are serialized; concurrent writers of one key in different
// processes should hold Lock (a Source does), or old chunks may be left
// behind (never read).
//
// The zero value is ready to use. A Keyring is safe for concurrent use and
// must not be copied after first use.
type Keyring struct {
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

	writeMu  sync.Mutex
	answered atomic.Bool
}

const (
	inlinePrefix   = "osk1:i:"
	manifestPrefix = "osk1:c:"
	minChunkSize   = 256
	maxGetAttempts = 4
)

func (k *Keyring) service() string {
	if k.Service == "" {
		return "oauthsafe"
	}
	return k.Service
}

func (k *Keyring) chunkSize() int {
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
func (k *Keyring) rawPerChunk() int {
	return k.chunkSize() / 4 * 3
}

func (k *Keyring) timeout() time.Duration {
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
func (k *Keyring) call(ctx context.Context, op func() (string, error)) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
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
		case errors.Is(err, keyring.ErrNotFound):
			k.answered.Store(true)
			return "", ErrNotFound
		case errors.Is(err, keyring.ErrSetDataTooBig):
			k.answered.Store(true)
			return "", fmt.Errorf("%w: the keyring refused the entry size", ErrTooLarge)
		default:
			return "", fmt.Errorf("%w: keyring: %w", ErrUnavailable, err)
		}
	case <-ctx.Done():
		return "", fmt.Errorf("%w: keyring did not answer within %v: %w", ErrUnavailable, d, ctx.Err())
	}
}

func (k *Keyring) get(ctx context.Context, user string) (string, error) {
	svc := k.service()
	return k.call(ctx, func() (string, error) { return keyring.Get(svc, user) })
}

func (k *Keyring) set(ctx context.Context, user, val string) error {
	svc := k.service()
	_, err := k.call(ctx, func() (string, error) { return "", keyring.Set(svc, user, val) })
	return err
}

func (k *Keyring) del(ctx context.Context, user string) error {
	svc := k.service()
	_, err := k.call(ctx, func() (string, error) { return "", keyring.Delete(svc, user) })
	if errors.Is(err, ErrNotFound) {
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
			return nil, nil, fmt.Errorf("%w: bad inline keyring value", ErrCorrupt)
		}
		return b, nil, nil
	case strings.HasPrefix(s, manifestPrefix):
		f := strings.Split(s[len(manifestPrefix):], ":")
		if len(f) != 4 || len(f[0]) != 32 || !isLowerHex(f[0]) || len(f[3]) != 64 || !isLowerHex(f[3]) {
			return nil, nil, fmt.Errorf("%w: bad keyring manifest", ErrCorrupt)
		}
		count, err1 := strconv.Atoi(f[1])
		size, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || size <= 0 || size > MaxValueSize || count < 1 ||
			count != (size+rawPerChunk-1)/rawPerChunk {
			return nil, nil, fmt.Errorf("%w: bad keyring manifest", ErrCorrupt)
		}
		m := &manifest{gen: f[0], count: count, size: size}
		hex.Decode(m.sum[:], []byte(f[3]))
		return nil, m, nil
	default:
		return nil, nil, fmt.Errorf("%w: unknown keyring value format", ErrCorrupt)
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

// Get implements Store. A chunked value whose chunks do not match the
// manifest, or vanish while being read, is re-read while a writer is
// changing it; if it stays inconsistent the error satisfies
// errors.Is(err, ErrCorrupt).
func (k *Keyring) Get(ctx context.Context, key string) ([]byte, error) {
	per := k.rawPerChunk()
	var last string
	var lastErr error
	for attempt := 0; attempt < maxGetAttempts; attempt++ {
		s, err := k.get(ctx, key)
		if err != nil {
			// An entry deleted between the search and the read inside
			// the Secret Service shows up as a D-Bus error, not as
			// ErrNotFound: try once more before giving up.
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
		if !errors.Is(err, ErrCorrupt) && !transient(err) {
			return nil, err
		}
		if s == last {
			// The manifest did not move: the value really is damaged.
			return nil, err
		}
		last, lastErr = s, err
	}
	if lastErr == nil {
		lastErr = ErrUnavailable
	}
	return nil, fmt.Errorf("%w: keyring value kept changing while being read: %w", ErrCorrupt, lastErr)
}

// transient reports a keyring failure that was not a timeout, which a
// concurrent writer can cause.
func transient(err error) bool {
	return errors.Is(err, ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) &&
		!errors.Is(err, context.Canceled)
}

func (k *Keyring) readChunks(ctx context.Context, key string, m *manifest, per int) ([]byte, error) {
	buf := make([]byte, 0, m.size)
	for i := 0; i < m.count; i++ {
		s, err := k.get(ctx, chunkUser(key, m.gen, i))
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: keyring chunk missing", ErrCorrupt)
		}
		if err != nil {
			return nil, err
		}
		b, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil || len(b) > per || len(buf)+len(b) > m.size {
			return nil, fmt.Errorf("%w: bad keyring chunk", ErrCorrupt)
		}
		buf = append(buf, b...)
	}
	sum := sha256.Sum256(buf)
	if len(buf) != m.size || subtle.ConstantTimeCompare(sum[:], m.sum[:]) != 1 {
		return nil, fmt.Errorf("%w: keyring chunks do not match their manifest", ErrCorrupt)
	}
	return buf, nil
}

// Put implements Store. Values over MaxValueSize give ErrTooLarge before
// anything is written.
func (k *Keyring) Put(ctx context.Context, key string, value []byte) error {
	if len(value) > MaxValueSize {
		return ErrTooLarge
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
func (k *Keyring) currentManifest(ctx context.Context, key string) (*manifest, error) {
	s, err := k.get(ctx, key)
	if errors.Is(err, ErrNotFound) {
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

func (k *Keyring) deleteChunks(ctx context.Context, key string, m *manifest, n int) error {
	var first error
	for i := 0; i < n; i++ {
		if err := k.del(ctx, chunkUser(key, m.gen, i)); err != nil && first == nil {
			first = err
			if errors.Is(err, ErrUnavailable) {
				return err
			}
		}
	}
	return first
}

// Delete implements Store. The main entry goes first, so readers see
// ErrNotFound at once; then the chunks are removed.
func (k *Keyring) Delete(ctx context.Context, key string) error {
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

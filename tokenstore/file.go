package tokenstore

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/cfgerr"
	"github.com/oauthsafe/oauthsafe/internal/storelimit"

	"github.com/oauthsafe/oauthsafe/internal/filelock"
	"golang.org/x/crypto/scrypt"
)

// EncryptedFile is a Store in one passphrase-encrypted file, for headless
// machines without a keyring. Using it is an explicit choice: nothing in
// this module falls back to it.
//
// The key is derived from the passphrase with scrypt (salt and parameters
// are kept in the file header) and the data is sealed with AES-256-GCM, the
// header being authenticated data. The file must be mode 0600 (no group or
// other bits) inside a directory of mode 0700, both owned by the current
// user; otherwise every call fails with ErrInsecurePermissions and nothing is
// written. A missing directory is created with 0700. Writes go to a temporary
// file in the same directory, which is synced, renamed over the file, and
// the directory synced, so the file is always either the old or the new
// version, and is durable when Tx.Put returns. Update holds an exclusive
// file lock beside the file (Path+".lock") across goroutines and processes
// of one machine; a network file system may not honour it.
//
// A wrong passphrase gives ErrWrongPassphrase; a truncated or tampered file
// gives ErrCorrupt, and a Put or Delete then leaves the file untouched.
//
// An EncryptedFile is safe for concurrent use and must not be copied after
// first use.
type EncryptedFile struct {
	// Path is the file. Required.
	Path string
	// Passphrase returns the passphrase. It is called when a key must be
	// derived (once per salt while the EncryptedFile is in use); the
	// returned slice is zeroed after use and never logged. Required.
	Passphrase func() ([]byte, error)
	// LockTimeout bounds how long Update waits for the file lock before
	// it returns ErrLocked. Zero means 30 seconds.
	LockTimeout time.Duration

	mu      sync.Mutex
	keySalt []byte // header bytes (version, scrypt parameters, salt) the key was derived for
	key     []byte // AES key derived for keySalt
	check   []byte // passphrase check value for keySalt
}

// File format, all integers big-endian:
//
//	magic "OSEF" | version 1 | logN u8 | r u32 | p u32 | salt [16] | check [32] | nonce [12] | ciphertext
//
// check = SHA-256("oauthsafe/tokenstore/check/v1" || scrypt output[32:64])
// lets a wrong passphrase be told apart from a damaged file. The
// plaintext is JSON: {"v":1,"entries":{key: base64(value)}}.
const (
	fileMagic   = "OSEF"
	fileVersion = 1
	headerLen   = 4 + 1 + 1 + 4 + 4 + 16 + 32
	nonceLen    = 12
	maxFileSize = 16 << 20
	defaultLogN = 15
	defaultR    = 8
	defaultP    = 1
	checkDomain = "oauthsafe/tokenstore/check/v1"
)

type fileHeader struct {
	logN  uint8
	r, p  uint32
	salt  []byte
	check []byte
	raw   []byte // the header bytes, used as AAD
}

type filePayload struct {
	V       int               `json:"v"`
	Entries map[string][]byte `json:"entries"`
}

// parseFile splits a file into header, nonce and ciphertext and checks the
// scrypt parameters against bounds that keep key derivation cheap enough
// (at most 256 MiB of memory).
func parseFile(b []byte) (*fileHeader, []byte, []byte, error) {
	if len(b) > maxFileSize {
		return nil, nil, nil, fmt.Errorf("%w: file too large", ErrCorrupt)
	}
	if len(b) < headerLen+nonceLen+16 {
		return nil, nil, nil, fmt.Errorf("%w: file truncated", ErrCorrupt)
	}
	if string(b[:4]) != fileMagic || b[4] != fileVersion {
		return nil, nil, nil, fmt.Errorf("%w: not an oauthsafe encrypted file", ErrCorrupt)
	}
	h := &fileHeader{
		logN:  b[5],
		r:     binary.BigEndian.Uint32(b[6:10]),
		p:     binary.BigEndian.Uint32(b[10:14]),
		salt:  b[14:30],
		check: b[30:62],
		raw:   b[:headerLen],
	}
	if h.logN < 10 || h.logN > 20 || h.r < 1 || h.r > 32 || h.p < 1 || h.p > 16 ||
		(uint64(128)*uint64(h.r)<<h.logN) > 256<<20 {
		return nil, nil, nil, fmt.Errorf("%w: scrypt parameters out of range", ErrCorrupt)
	}
	return h, b[headerLen : headerLen+nonceLen], b[headerLen+nonceLen:], nil
}

// deriveKey returns the AES key and check value for the salt and params,
// reusing the cached ones when the salt and parameters match. Called with f.mu held.
func (f *EncryptedFile) deriveKey(h *fileHeader) (key, check []byte, err error) {
	if f.key != nil && bytes.Equal(f.keySalt, h.raw[:30]) {
		return f.key, f.check, nil
	}
	if f.Passphrase == nil {
		return nil, nil, errors.New("tokenstore: EncryptedFile needs a Passphrase")
	}
	pass, err := f.Passphrase()
	if err != nil {
		return nil, nil, fmt.Errorf("tokenstore: passphrase: %w", err)
	}
	defer clear(pass)
	if len(pass) == 0 {
		return nil, nil, errors.New("tokenstore: empty passphrase")
	}
	out, err := scrypt.Key(pass, h.salt, 1<<h.logN, int(h.r), int(h.p), 64)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: scrypt: %w", ErrCorrupt, err)
	}
	c := sha256.Sum256(append([]byte(checkDomain), out[32:]...))
	f.keySalt, f.key, f.check = bytes.Clone(h.raw[:30]), out[:32], c[:]
	return f.key, f.check, nil
}

// load reads and decrypts the file; a missing file is an empty map with a
// nil header. Called with f.mu held.
func (f *EncryptedFile) load() (*fileHeader, map[string][]byte, error) {
	if f.Path == "" {
		return nil, nil, errors.New("tokenstore: EncryptedFile needs a Path")
	}
	if err := f.checkDir(); err != nil {
		return nil, nil, err
	}
	b, err := f.readSecure()
	if errors.Is(err, os.ErrNotExist) {
		return nil, map[string][]byte{}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	h, nonce, ct, err := parseFile(b)
	if err != nil {
		return nil, nil, err
	}
	key, check, err := f.deriveKey(h)
	if err != nil {
		return nil, nil, err
	}
	if subtle.ConstantTimeCompare(check, h.check) != 1 {
		f.key, f.keySalt, f.check = nil, nil, nil // let a later call ask again
		return nil, nil, ErrWrongPassphrase
	}
	m, err := openPayload(key, h.raw, nonce, ct)
	if err != nil {
		return nil, nil, err
	}
	return h, m, nil
}

func openPayload(key, aad, nonce, ct []byte) (map[string][]byte, error) {
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	pt, err := gcm.Open(nil, nonce, ct, aad)
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed", ErrCorrupt)
	}
	defer clear(pt)
	var p filePayload
	if err := json.Unmarshal(pt, &p); err != nil || p.V != 1 {
		return nil, fmt.Errorf("%w: bad payload", ErrCorrupt)
	}
	if p.Entries == nil {
		p.Entries = map[string][]byte{}
	}
	return p.Entries, nil
}

// checkDir creates the directory (0700) if missing and refuses one that
// others can read or write, or that we do not own.
func (f *EncryptedFile) checkDir() error {
	dir := filepath.Dir(f.Path)
	fi, err := os.Lstat(dir)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("tokenstore: %w", err)
		}
		fi, err = os.Lstat(dir)
	}
	if err != nil {
		return fmt.Errorf("tokenstore: %w", err)
	}
	if !fi.IsDir() || filelock.InsecureMode(fi.Mode(), 0o077) || !filelock.OwnedByUs(fi) {
		return fmt.Errorf("%w: directory %s must be a 0700 directory owned by the user", ErrInsecurePermissions, dir)
	}
	return nil
}

// readSecure opens the file without following symlinks and checks its mode
// on the open descriptor before reading.
func (f *EncryptedFile) readSecure() ([]byte, error) {
	fh, err := openNoFollow(f.Path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("tokenstore: %w", err)
	}
	if !fi.Mode().IsRegular() || filelock.InsecureMode(fi.Mode(), 0o077) || !filelock.OwnedByUs(fi) {
		return nil, fmt.Errorf("%w: %s must be a 0600 regular file owned by the user", ErrInsecurePermissions, f.Path)
	}
	b, err := io.ReadAll(io.LimitReader(fh, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("tokenstore: %w", err)
	}
	return b, nil
}

// save encrypts m and replaces the file atomically. It keeps the salt and
// parameters of h (so the cached key stays valid) or creates new ones.
// Called with f.mu held.
func (f *EncryptedFile) save(h *fileHeader, m map[string][]byte) error {
	if h == nil {
		raw := make([]byte, headerLen)
		copy(raw, fileMagic)
		raw[4], raw[5] = fileVersion, defaultLogN
		binary.BigEndian.PutUint32(raw[6:10], defaultR)
		binary.BigEndian.PutUint32(raw[10:14], defaultP)
		rand.Read(raw[14:30])
		h = &fileHeader{logN: defaultLogN, r: defaultR, p: defaultP, salt: raw[14:30], check: raw[30:62], raw: raw}
		_, check, err := f.deriveKey(h)
		if err != nil {
			return err
		}
		copy(raw[30:62], check)
	}
	key, _, err := f.deriveKey(h)
	if err != nil {
		return err
	}
	pt, err := json.Marshal(filePayload{V: 1, Entries: m})
	if err != nil {
		return fmt.Errorf("tokenstore: %w", err)
	}
	defer clear(pt)
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	out := make([]byte, headerLen+nonceLen, headerLen+nonceLen+len(pt)+gcm.Overhead())
	copy(out, h.raw)
	rand.Read(out[headerLen:])
	out = gcm.Seal(out, out[headerLen:headerLen+nonceLen], pt, h.raw)
	if len(out) > maxFileSize {
		return ErrTooLarge
	}
	return writeAtomic(f.Path, out)
}

// writeAtomic writes data to a temporary file in path's directory, syncs
// it, renames it over path and syncs the directory.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("tokenstore: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("tokenstore: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("tokenstore: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("tokenstore: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("tokenstore: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("tokenstore: %w", err)
	}
	return syncDir(dir)
}

// Get implements Store. It takes no lock: a write replaces the file
// atomically, so Get sees the old or the new version.
func (f *EncryptedFile) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	_, m, err := f.load()
	if err != nil {
		return nil, err
	}
	v, ok := m[key]
	if !ok {
		return nil, ErrNotFound
	}
	return v, nil
}

// Update implements Store. It holds an exclusive lock on the file
// Path+".lock" (flock on unix, LockFileEx on Windows) for the length of fn,
// for every key of the file: goroutines and processes take turns. The OS
// releases the lock of a process that dies. Waiting ends with ErrLocked
// when ctx ends or after LockTimeout.
func (f *EncryptedFile) Update(ctx context.Context, key string, fn func(ctx context.Context, tx Tx) error) (err error) {
	if f.Path == "" {
		return cfgerr.New("tokenstore", "EncryptedFile needs a Path")
	}
	if err := f.checkDirLocked(); err != nil {
		return err
	}
	wait := f.LockTimeout
	if wait <= 0 {
		wait = 30 * time.Second
	}
	lctx, cancel := context.WithTimeout(ctx, wait)
	unlock, err := filelock.LockFile(lctx, f.Path+".lock")
	cancel()
	if err != nil {
		if lctx.Err() != nil {
			return fmt.Errorf("%w: %w", ErrLocked, err)
		}
		return err
	}
	tx := &fileTx{f: f, key: key}
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

func (f *EncryptedFile) checkDirLocked() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.checkDir()
}

type fileTx struct {
	f    *EncryptedFile
	key  string
	done bool
}

func (tx *fileTx) Get(ctx context.Context) ([]byte, error) {
	if tx.done {
		return nil, errTxDone
	}
	return tx.f.Get(ctx, tx.key)
}

// Put rewrites the file (synced, renamed, directory synced) before it
// returns.
func (tx *fileTx) Put(ctx context.Context, value []byte) error {
	if tx.done {
		return errTxDone
	}
	if len(value) > storelimit.MaxValueSize {
		return ErrTooLarge
	}
	return tx.f.change(ctx, func(m map[string][]byte) bool {
		m[tx.key] = bytes.Clone(value)
		return true
	})
}

func (tx *fileTx) Delete(ctx context.Context) error {
	if tx.done {
		return errTxDone
	}
	return tx.f.change(ctx, func(m map[string][]byte) bool {
		if _, ok := m[tx.key]; !ok {
			return false
		}
		delete(m, tx.key)
		return true
	})
}

// change runs a read-modify-write cycle; the caller holds the file lock.
// Any error reading the file aborts before writing.
func (f *EncryptedFile) change(ctx context.Context, edit func(map[string][]byte) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	h, m, err := f.load()
	if err != nil {
		return err
	}
	if !edit(m) {
		return nil
	}
	return f.save(h, m)
}

// Format implements fmt.Formatter; no verb shows the key.
func (f *EncryptedFile) Format(st fmt.State, verb rune) {
	io.WriteString(st, "tokenstore.EncryptedFile{"+f.Path+"}")
}

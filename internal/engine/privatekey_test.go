package engine

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/tokenstore"

	"golang.org/x/oauth2"
)

func newTestKey(t testing.TB) (PrivateKey, []byte) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewPrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	return k, der
}

// TestPrivateKey: only PKCS #8 of bounded size is taken, the bytes are
// copied in and out, and no error names key material.
func TestPrivateKey(t *testing.T) {
	k, der := newTestKey(t)
	if k.IsZero() || !bytes.Equal(k.PKCS8(), der) {
		t.Fatal("key bytes not kept")
	}
	der[10] ^= 0xff // the caller's slice is not the key's
	out := k.PKCS8()
	out[10] ^= 0xff // nor is the returned one
	if bytes.Equal(k.PKCS8(), der) || bytes.Equal(k.PKCS8(), out) {
		t.Fatal("PrivateKey shares its bytes with a caller")
	}
	if (PrivateKey{}).PKCS8() != nil || !(PrivateKey{}).IsZero() || k.Equal(PrivateKey{}) {
		t.Fatal("zero PrivateKey")
	}
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(priv) // not PKCS #8
	for name, b := range map[string][]byte{
		"empty": nil, "garbage": []byte("not a key"), "SEC 1": sec1, "oversize": make([]byte, maxPrivateKeySize+1),
	} {
		_, err := NewPrivateKey(b)
		if !errors.Is(err, tokenstore.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
		if err != nil && len(b) > 4 && strings.Contains(err.Error(), string(b)) {
			t.Errorf("%s: error names the key bytes", name)
		}
	}
}

// TestRecordKeepsDPoPKey: the key round-trips through the stored form; a
// malformed one makes the record ErrCorrupt (a refresh token bound to a
// key we cannot use is not usable).
func TestRecordKeepsDPoPKey(t *testing.T) {
	k, der := newTestKey(t)
	b, err := encodeRecord(&Record{RefreshToken: "rt", Issuer: "i", ClientID: "c", DPoPKey: k})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"dpop":{"pkcs8":"`+base64.StdEncoding.EncodeToString(der)+`"}`)) {
		t.Fatalf("stored form: %s", b)
	}
	r, err := decodeRecord(b)
	if err != nil || !r.DPoPKey.Equal(k) {
		t.Fatalf("decode: %v", err)
	}
	if c := r.clone(); !c.DPoPKey.Equal(k) {
		t.Fatal("clone dropped the key")
	}
	if b2, _ := encodeRecord(r); !bytes.Equal(b, b2) {
		t.Fatal("rewrite changed the record")
	}
	r, err = decodeRecord([]byte(`{"v":2,"refresh_token":"x","iss":"i","client_id":"c","gen":1}`))
	if err != nil || !r.DPoPKey.IsZero() {
		t.Fatalf("record without key: %v", err)
	}
	big := base64.StdEncoding.EncodeToString(make([]byte, maxPrivateKeySize+1))
	for _, dpop := range []string{
		`{"kty":"EC"}`, `"` + base64.StdEncoding.EncodeToString(der) + `"`, `{"pkcs8":"AAAA"}`, `{"pkcs8":""}`,
		`{"pkcs8":"not base64"}`, `{"pkcs8":"` + big + `"}`, `[]`, `1`,
		`{"pkcs8":"` + base64.StdEncoding.EncodeToString(der) + `","x":1}`,
	} {
		_, err := decodeRecord([]byte(`{"v":2,"refresh_token":"x","iss":"i","client_id":"c","gen":1,"dpop":` + dpop + `}`))
		if !errors.Is(err, tokenstore.ErrCorrupt) {
			t.Errorf("dpop %.40s: %v, want ErrCorrupt", dpop, err)
		}
	}
}

// countingStore counts the Puts of a Memory and lets a test fail them.
type countingStore struct {
	tokenstore.Memory
	puts atomic.Int32
	fail atomic.Bool
}

func (s *countingStore) Update(ctx context.Context, key string, fn func(context.Context, tokenstore.Tx) error) error {
	return hookedUpdate(ctx, &s.Memory, s, key, fn)
}

func (s *countingStore) hookPut(ctx context.Context, next tokenstore.Tx, v []byte) error {
	if s.fail.Load() {
		return errPut
	}
	s.puts.Add(1)
	return next.Put(ctx, v)
}

// TestSourceStoresDPoPKeyWithRotation (S27): the record's key is handed to
// every refresh and kept across rotations; a key the FetchFunc sets is
// written in the same Put as the refresh token it may bind, also when the
// response is refused after rotation, when the request fails, and (held in
// memory, used next) when the store fails.
func TestSourceStoresDPoPKeyWithRotation(t *testing.T) {
	ctx := context.Background()
	k1, _ := newTestKey(t)
	k2, _ := newTestKey(t)
	clk := newClock()
	st := &countingStore{}
	if err := SaveRecord(ctx, st, "k", &Record{RefreshToken: "rt-0", Issuer: "i", ClientID: "c", DPoPKey: k1}); err != nil {
		t.Fatal(err)
	}
	st.puts.Store(0)
	type step struct {
		setKey  PrivateKey
		rotate  string
		err     error
		wantKey PrivateKey // the key handed to the fetch
	}
	var cur step
	var seen []PrivateKey
	n := 0
	var storeDown atomic.Bool // the store fails once the request has left
	fetch := func(ctx context.Context, r *Refresh) (*Result, error) {
		if storeDown.Load() {
			st.fail.Store(true)
		}
		seen = append(seen, r.Record.DPoPKey)
		r.SetDPoPKey(cur.setKey)
		if cur.rotate != "" {
			r.Rotated(cur.rotate)
		}
		if cur.err != nil {
			return nil, cur.err
		}
		n++
		return &Result{Token: &oauth2.Token{AccessToken: "at-" + cur.rotate, Expiry: clk.Now().Add(time.Hour)}}, nil
	}
	var changes []*Record
	s, err := NewSource(SourceConfig{Store: st, Key: "k", Fetch: fetch, Now: clk.Now,
		OnRecordChange: func(_ context.Context, rec *Record) error { changes = append(changes, rec); return nil }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	errRefused := errors.New("check refused the response")
	for i, tc := range []struct {
		name string
		step
		wantErr  bool
		wantPuts int32
		stored   PrivateKey
		storedRT string
	}{
		// Every refresh writes the pending marker before the request and
		// the outcome (key and rotation together) in one Put after it.
		{"rotation keeps the key", step{rotate: "rt-1", wantKey: k1}, false, 2, k1, "rt-1"},
		{"new key and rotation in one Put", step{setKey: k2, rotate: "rt-2", wantKey: k1}, false, 2, k2, "rt-2"},
		{"same key again only clears the marker", step{setKey: k2, wantKey: k2}, false, 2, k2, "rt-2"},
		{"refused after rotation", step{setKey: k1, rotate: "rt-3", err: errRefused, wantKey: k2}, true, 2, k1, "rt-3"},
		{"request failed", step{setKey: k2, err: errServer, wantKey: k1}, true, 2, k2, "rt-3"},
	} {
		cur = tc.step
		before := st.puts.Load()
		clk.Advance(2 * time.Hour)
		_, err := s.Token()
		if (err != nil) != tc.wantErr {
			t.Fatalf("%s: Token = %v", tc.name, err)
		}
		if !seen[i].Equal(tc.wantKey) {
			t.Fatalf("%s: the fetch was not handed the record's key", tc.name)
		}
		rec, err := LoadRecord(ctx, st, "k")
		if err != nil {
			t.Fatal(err)
		}
		if got := st.puts.Load() - before; got != tc.wantPuts || !rec.DPoPKey.Equal(tc.stored) || rec.RefreshToken != tc.storedRT {
			t.Fatalf("%s: %d Puts, stored key right %v, refresh token %q", tc.name, got, rec.DPoPKey.Equal(tc.stored), rec.RefreshToken)
		}
		if tc.wantPuts > 0 && !changes[len(changes)-1].DPoPKey.Equal(tc.stored) {
			t.Fatalf("%s: OnRecordChange saw another key", tc.name)
		}
	}

	// A store that fails: the new key and rotation stay in memory and are
	// what the next refresh is handed, then written.
	storeDown.Store(true)
	k3, _ := newTestKey(t)
	cur = step{setKey: k3, rotate: "rt-4"}
	clk.Advance(2 * time.Hour)
	if _, err := s.Token(); !errors.Is(err, errPut) {
		t.Fatalf("failing store: %v", err)
	}
	storeDown.Store(false)
	st.fail.Store(false)
	cur = step{rotate: "rt-5"}
	clk.Advance(2 * time.Hour)
	if _, err := s.Token(); err != nil {
		t.Fatal(err)
	}
	if !seen[len(seen)-1].Equal(k3) {
		t.Fatal("the refresh after a failed Put was not handed the unsaved key")
	}
	if rec, _ := LoadRecord(ctx, st, "k"); !rec.DPoPKey.Equal(k3) || rec.RefreshToken != "rt-5" {
		t.Fatal("the unsaved key was not written")
	}
}

// TestMemoryOnlySourceKeepsDPoPKey: with Store nil the key of
// SourceConfig.Record is kept across rotations and reported.
func TestMemoryOnlySourceKeepsDPoPKey(t *testing.T) {
	k, _ := newTestKey(t)
	clk := newClock()
	srv := newTokenServer(clk.Now)
	var last *Record
	s, err := NewSource(SourceConfig{Record: &Record{RefreshToken: "rt-0", DPoPKey: k}, Fetch: asFetch(srv.refresh), Now: clk.Now,
		OnRecordChange: func(_ context.Context, rec *Record) error { last = rec; return nil }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.Token(); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Hour)
	}
	if last == nil || !last.DPoPKey.Equal(k) {
		t.Fatal("the key was dropped by a rotation")
	}
}

package callback

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe/oauthclient"
)

// staticClient is a client with static metadata: Start needs no server.
func staticClient(tb testing.TB) *oauthclient.Client {
	tb.Helper()
	c, err := oauthclient.New(tb.Context(), oauthclient.Config{
		Issuer:   "https://as.test",
		ClientID: "app",
		Metadata: &oauthclient.Metadata{
			Issuer:                        "https://as.test",
			AuthorizationEndpoint:         "https://as.test/authorize",
			TokenEndpoint:                 "https://as.test/token",
			CodeChallengeMethodsSupported: []string{"S256"},
		},
		RedirectURL: "https://app.test/callback",
		Scopes:      []string{"openid", "profile", "email"},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func sealedFlow(tb testing.TB, c *oauthclient.Client, s *sealer, returnTo string) (name, value, state string) {
	tb.Helper()
	p, _, err := c.Start(context.Background(), oauthclient.StartOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	data, err := encodeFlow(flow{pending: p, returnTo: returnTo})
	if err != nil {
		tb.Fatal(err)
	}
	name = defaultCookiePrefix + stateID(p.State())
	return name, s.seal(name, data), p.State()
}

// TestSealRotation: the first key seals, every key opens; a removed key's
// cookies fail with errBadCookie; a value never opens under another name.
func TestSealRotation(t *testing.T) {
	c := staticClient(t)
	k1, k2 := mustKey(t), mustKey(t)
	old, _ := newSealer([][]byte{k1})
	rotated, _ := newSealer([][]byte{k2, k1})
	retired, _ := newSealer([][]byte{k2})

	name, v1, state := sealedFlow(t, c, old, "/x")
	pt, err := rotated.open(name, v1)
	if err != nil {
		t.Fatalf("rotated list does not open a cookie of the old key: %v", err)
	}
	f, err := decodeFlow(pt)
	if err != nil || f.pending.State() != state || f.returnTo != "/x" {
		t.Fatalf("round trip: %v %q", err, f.returnTo)
	}
	if _, err := retired.open(name, v1); !errors.Is(err, errBadCookie) {
		t.Errorf("retired key list opened an old cookie: %v", err)
	}
	name2, v2, _ := sealedFlow(t, c, rotated, "")
	if _, err := retired.open(name2, v2); err != nil {
		t.Errorf("new key does not seal first: %v", err)
	}
	if _, err := old.open(name2, v2); !errors.Is(err, errBadCookie) {
		t.Error("a cookie sealed after rotation opened with only the old key")
	}
	if _, err := rotated.open(name2, v1); !errors.Is(err, errBadCookie) {
		t.Error("a sealed value opened under another cookie name")
	}
	if _, err := rotated.open(name, v1+"\n"); !errors.Is(err, errBadCookie) {
		t.Error("a value with a stray byte opened")
	}
	if strings.Contains(v1, state) {
		t.Error("sealed value shows the state")
	}
}

// FuzzOpenCookie: opening never panics and accepts nothing but the exact
// values that were sealed, through the sealer and through the Handler's
// cookie lookup.
func FuzzOpenCookie(f *testing.F) {
	c := staticClient(f)
	key := make([]byte, keySize) // a fixed key keeps the corpus meaningful
	for i := range key {
		key[i] = byte(i)
	}
	s, err := newSealer([][]byte{key})
	if err != nil {
		f.Fatal(err)
	}
	h, err := New(Config{Client: c, Keys: [][]byte{key}, OnLogin: (&logins{}).onLogin})
	if err != nil {
		f.Fatal(err)
	}
	name, genuine, state := sealedFlow(f, c, s, "/return")
	f.Add(genuine)
	f.Add(genuine[:len(genuine)-1])
	f.Add(genuine[:len(genuine)-1] + "A")
	f.Add("A" + genuine[1:])
	f.Add("")
	f.Add("AQ")
	f.Add(strings.Repeat("A", 5000))
	_, other, _ := sealedFlow(f, c, s, "")
	f.Add(other)
	f.Fuzz(func(t *testing.T, v string) {
		pt, err := s.open(name, v)
		if err == nil && v != genuine {
			t.Fatalf("opened a value that was not sealed for this cookie: %q", v)
		}
		if err == nil {
			if _, err := decodeFlow(pt); err != nil {
				t.Fatalf("genuine value does not decode: %v", err)
			}
		} else if !errors.Is(err, errBadCookie) {
			t.Fatalf("error %v is not errBadCookie", err)
		}
		r := httptest.NewRequest(http.MethodGet, "https://app.test/callback", nil)
		r.Header.Set("Cookie", name+"="+v)
		fl, err := h.load(r, name, state)
		if err == nil && (v != genuine || fl.pending.State() != state) {
			t.Fatalf("Handler accepted a forged cookie %q", v)
		}
	})
}

// BenchmarkSealOpen seals and opens one pending flow (with a return-to
// path), and reports the size of the cookie (name and value).
func BenchmarkSealOpen(b *testing.B) {
	c := staticClient(b)
	s, err := newSealer([][]byte{mustKey(b)})
	if err != nil {
		b.Fatal(err)
	}
	p, _, err := c.Start(context.Background(), oauthclient.StartOptions{})
	if err != nil {
		b.Fatal(err)
	}
	name := defaultCookiePrefix + stateID(p.State())
	var size int
	b.ReportAllocs()
	for b.Loop() {
		data, err := encodeFlow(flow{pending: p, returnTo: "/reports?id=7"})
		if err != nil {
			b.Fatal(err)
		}
		v := s.seal(name, data)
		pt, err := s.open(name, v)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := decodeFlow(pt); err != nil {
			b.Fatal(err)
		}
		size = len(name) + 1 + len(v)
	}
	b.ReportMetric(float64(size), "cookie-bytes")
}

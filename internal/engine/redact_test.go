package engine

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/tokenstore"

	"golang.org/x/oauth2"
)

// TestNoSecretsInOutput formats every type of ours that holds a token or a
// key with every fmt verb, slog and JSON, and searches for the secrets.
func TestNoSecretsInOutput(t *testing.T) {
	ctx := context.Background()
	const at, rt = "ACCESS-SECRET-123", "REFRESH-SECRET-456"
	mem := &tokenstore.Memory{}
	saveRT(t, mem, "k", rt)
	src, err := NewSource(SourceConfig{Store: mem, Key: "k", Fetch: func(context.Context, *Refresh) (*Result, error) {
		return nil, errServer
	}}, &oauth2.Token{AccessToken: at, RefreshToken: rt, Expiry: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	ef := newTestFile(t)
	if err := putKey(ef, ctx, "k", []byte(rt)); err != nil {
		t.Fatal(err)
	}
	dk, der := newTestKey(t)
	secrets := []string{at, rt, "correct horse",
		string(der), hex.EncodeToString(der), base64.StdEncoding.EncodeToString(der), fmt.Sprint(der[:8])[1:20]}
	rec, err := LoadRecord(ctx, mem, "k")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := NewPool(PoolConfig{New: func(context.Context, string) (*Source, error) { return src, nil }})
	if err != nil {
		t.Fatal(err)
	}
	pool.Add("k", src)
	rec.DPoPKey = dk
	for name, v := range map[string]any{"Pool": pool, "Source": src, "Memory": mem, "EncryptedFile": ef, "Record": rec, "Record value": *rec,
		"PrivateKey": dk, "*PrivateKey": &dk} {
		var outs []string
		for _, verb := range []string{"%v", "%+v", "%#v", "%q", "%s", "%x"} {
			outs = append(outs, fmt.Sprintf(verb, v))
		}
		var buf bytes.Buffer
		slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "v", v)
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "v", v)
		outs = append(outs, buf.String())
		if b, err := json.Marshal(v); err == nil {
			outs = append(outs, string(b))
		}
		for _, out := range outs {
			for _, s := range secrets {
				if s != "" && strings.Contains(out, s) {
					t.Fatalf("%s output %q contains a secret", name, out)
				}
			}
		}
	}
}

package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe/callback"
)

// TestKeyErrorsHoldNoKeyMaterial: every error about a key names the key's
// position (or its id, when it is known to be one), never the key material:
// items written the wrong way round ("<base64>:id"), a wrong size, bad
// base64, a duplicate, through parseKeys and New (Config.Keys), NewSealingKey,
// and callback's key list.
func TestKeyErrorsHoldNoKeyMaterial(t *testing.T) {
	raw := make([]byte, keySize)
	rand.Read(raw)
	material := base64.StdEncoding.EncodeToString(raw)
	short := base64.RawURLEncoding.EncodeToString(raw[:20])
	check := func(name string, err error, position string) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: accepted", name)
			return
		}
		msg := err.Error()
		for _, m := range []string{material, strings.TrimRight(material, "="), short} {
			for i := 0; i+12 <= len(m); i += 4 {
				if strings.Contains(msg, m[i:i+12]) {
					t.Errorf("%s: the error holds key material: %s", name, msg)
					return
				}
			}
		}
		if position != "" && !strings.Contains(msg, position) {
			t.Errorf("%s: %q does not name %q", name, msg, position)
		}
	}
	good := "k1:" + base64.StdEncoding.EncodeToString(make([]byte, keySize))
	for _, tc := range []struct{ name, list, position string }{
		{"reversed", material + ":k1", "item 1"},
		{"reversed second", good + "," + material + ":k2", "item 2"},
		{"reversed, url alphabet", strings.TrimRight(base64.URLEncoding.EncodeToString(raw), "=") + ":k1", "item 1"},
		{"short secret", "k1:" + short, "item 1"},
		{"no colon", material, "item 1"},
		{"secret not base64", "k1:" + material + "!!", "item 1"},
		{"duplicate", good + ",k1:" + material, "key 2"},
	} {
		_, err := parseKeys(tc.list)
		check("parseKeys "+tc.name, err, tc.position)
		_, err = New(context.Background(), Config{DB: &sql.DB{}, Keys: keyText(t, tc.list)})
		check("New "+tc.name, err, tc.position)
	}
	_, err := NewSealingKey(material)
	check("NewSealingKey with key material as id", err, "")
	_, err = callback.New(callback.Config{Keys: [][]byte{raw[:20]}})
	check("callback.New", err, "")
}

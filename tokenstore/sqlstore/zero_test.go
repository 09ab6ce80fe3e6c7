package sqlstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe"

	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// TestZeroStore: the zero and nil Store answer ErrConfig from
// every method, never a panic, and run no fn.
func TestZeroStore(t *testing.T) {
	ctx := context.Background()
	for name, s := range map[string]*Store{"zero": {}, "nil": nil} {
		t.Run(name, func(t *testing.T) {
			if _, err := s.Get(ctx, "k"); !errors.Is(err, oauthsafe.ErrConfig) {
				t.Errorf("Get = %v", err)
			}
			ran := false
			if err := s.Update(ctx, "k", func(context.Context, tokenstore.Tx) error { ran = true; return nil }); !errors.Is(err, oauthsafe.ErrConfig) || ran {
				t.Errorf("Update = %v (fn ran: %v)", err, ran)
			}
			if n, err := s.Reseal(ctx); !errors.Is(err, oauthsafe.ErrConfig) || n != 0 {
				t.Errorf("Reseal = %d, %v", n, err)
			}
			_ = fmt.Sprintf("%v %+v %#v %s", s, s, s, s)
		})
	}
}

// TestNewRefusesBadConfig: every invalid Config is refused with an error
// matching ErrConfig before the database is touched.
func TestNewRefusesBadConfig(t *testing.T) {
	db := &sql.DB{} // never used: each config is refused first
	k := keyText(t, "k1:"+base64.StdEncoding.EncodeToString(make([]byte, keySize)))
	for name, cfg := range map[string]Config{
		"no DB":            {Keys: k},
		"no keys":          {DB: db},
		"bad table":        {DB: db, Keys: k, Table: "Tokens; DROP"},
		"bad schema":       {DB: db, Keys: k, Schema: "a-b"},
		"short lease":      {DB: db, Keys: k, LeaseTTL: time.Millisecond},
		"negative timeout": {DB: db, Keys: k, LockTimeout: -time.Second},
	} {
		if _, err := New(context.Background(), cfg); !errors.Is(err, oauthsafe.ErrConfig) {
			t.Errorf("%s: New = %v, want ErrConfig", name, err)
		}
	}
}

package registration

import (
	"encoding/json"
	"errors"
	"testing"
)

// TestParse: a record is used only for the issuer it names, in version 1,
// with a client id; anything else is ErrUnreadable, never a panic.
func TestParse(t *testing.T) {
	const issuer = "https://as.example"
	good := Record{V: 1, Issuer: issuer, RedirectURL: "http://127.0.0.1/callback", ClientID: "dyn-1", ClientSecret: "s", AuthMethod: "client_secret_basic"}
	enc := func(r Record) []byte { b, _ := json.Marshal(r); return b }
	if r, err := Parse(enc(good), issuer); err != nil || r != good {
		t.Fatalf("Parse = %+v, %v", r, err)
	}
	bad := map[string][]byte{
		"another issuer":   enc(Record{V: 1, Issuer: "https://as.example/", ClientID: "dyn-1"}),
		"another version":  enc(Record{V: 2, Issuer: issuer, ClientID: "dyn-1"}),
		"no version":       enc(Record{Issuer: issuer, ClientID: "dyn-1"}),
		"no client id":     enc(Record{V: 1, Issuer: issuer}),
		"not JSON":         []byte("{"),
		"JSON of a string": []byte(`"x"`),
		"empty":            nil,
	}
	for name, b := range bad {
		if r, err := Parse(b, issuer); !errors.Is(err, ErrUnreadable) || r != (Record{}) {
			t.Errorf("%s: %+v, %v; want ErrUnreadable", name, r, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"v":1,"issuer":"https://as.example","client_id":"c"}`), "https://as.example")
	f.Add([]byte(`{"v":1,"issuer":"https://as.example","client_id":""}`), "https://as.example")
	f.Add([]byte(`[]`), "")
	f.Fuzz(func(t *testing.T, b []byte, issuer string) {
		r, err := Parse(b, issuer)
		if err != nil {
			if !errors.Is(err, ErrUnreadable) || r != (Record{}) {
				t.Fatalf("error %v with %+v", err, r)
			}
			return
		}
		if r.V != 1 || r.Issuer != issuer || r.ClientID == "" {
			t.Fatalf("accepted %+v for %q", r, issuer)
		}
	})
}

package oauthclient

import (
	"context"
	"errors"
	"testing"

	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// TestOddSuccessBodiesKeepRotation (S23, S18): a 2xx token response whose
// body is a JSON object holding a refresh_token, after an optional UTF-8
// byte order mark, hands the rotated token over, whatever is odd about
// it: a BOM (then the refresh succeeds), trailing data after the object
// (a malformed response, refused with ErrMalformedResponse), a 201 or
// another 2xx status (refused). The rotated token is stored and sent
// next; the spent one is never sent again.
func TestOddSuccessBodiesKeepRotation(t *testing.T) {
	const obj = `{"access_token":"AT-1","token_type":"Bearer","expires_in":3600,"refresh_token":"RT-1"}`
	const bom = "\xef\xbb\xbf"
	for _, tc := range []struct {
		name   string
		status int
		body   string
		ok     bool
	}{
		{"BOM", 200, bom + obj, true},
		{"BOM and whitespace", 200, bom + " \n" + obj + "\r\n", true},
		{"trailing garbage", 200, obj + "garbage", false},
		{"trailing object", 200, obj + `{"refresh_token":"RT-other"}`, false},
		{"trailing bracket", 200, obj + "]", false},
		{"trailing brace", 200, obj + " }", false},
		{"BOM and trailing data", 200, bom + obj + "\x00", false},
		{"201", 201, obj, false},
		{"203", 203, obj, false},
		{"201 with BOM and trailing data", 201, bom + obj + "<html>", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostileAS(t)
			clk := newTestClock()
			c, toks := loggedIn(t, h, clk)
			store := &tokenstore.Memory{}
			src, err := c.TokenSource(context.Background(), TokenSourceConfig{Store: store, Key: "k"}, toks)
			if err != nil {
				t.Fatal(err)
			}
			sent := firstAnswerThenRotating(h, tc.status, tc.body)
			src.Invalidate(toks.OAuth2Token())
			tok, err := src.Token()
			switch {
			case tc.ok && (err != nil || tok.AccessToken != "AT-1"):
				t.Fatalf("Token = %v, %v; want AT-1", tok, err)
			case !tc.ok && !errors.Is(err, ErrMalformedResponse):
				t.Fatalf("Token = %v, want ErrMalformedResponse", err)
			}
			checkRotationUsedNext(t, store, clk, src, sent)
		})
	}
}

// TestDecodeObjectTrailingData: one JSON object, optionally after a BOM
// and surrounded by JSON whitespace, decodes; anything after it is
// trailing data matching ErrMalformedResponse.
func TestDecodeObjectTrailingData(t *testing.T) {
	for body, ok := range map[string]bool{
		`{"a":1}`:               true,
		"\xef\xbb\xbf{\"a\":1}": true,
		" {\"a\":1} \n\t":       true,
		`{"a":1}x`:              false,
		`{"a":1}]`:              false,
		`{"a":1}}`:              false,
		`{"a":1} {}`:            false,
		`{"a":1}` + "\x00":      false,
	} {
		_, err := decodeObject([]byte(body))
		if ok != (err == nil) || (!ok && !errors.Is(err, ErrMalformedResponse)) {
			t.Errorf("decodeObject(%q) = %v", body, err)
		}
	}
}

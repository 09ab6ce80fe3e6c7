package safetext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// hostile holds what must never reach a terminal, log or page (S22).
var hostile = []string{
	"\x1b]0;owned\x07", "\x1b[2J", "\x00\x01\x08\x0b\x0c\x1f", "\x7f",
	"\u009b2J", "\u0085\u008d\u009d\u009f", // C1 as UTF-8
	"\x9b2J", "\x80\x9f\xff\xfe", // raw C1 bytes and invalid UTF-8
	"\u202aa\u202bb\u202cc\u202dd\u202ee", "\u2066f\u2067g\u2068h\u2069", "\u200e\u200f\u061c", "\u2028\u2029",
}

func TestClean(t *testing.T) {
	for _, h := range hostile {
		in := "before " + h + " after"
		out := Clean(in, 0)
		if !IsClean(out) || IsClean(in) {
			t.Errorf("Clean(%q) = %q (IsClean in=%v out=%v)", in, out, IsClean(in), IsClean(out))
		}
		if !strings.HasPrefix(out, "before ") || !strings.HasSuffix(out, " after") {
			t.Errorf("Clean(%q) = %q lost the plain text", in, out)
		}
	}
	if got := Clean("a\tb\nc\rd", 0); got != "a b c d" {
		t.Errorf("whitespace: %q", got)
	}
	if got := Clean("héllo wörld ✓", 0); got != "héllo wörld ✓" {
		t.Errorf("printable Unicode changed: %q", got)
	}
	big := strings.Repeat("é\x1b", 1<<20)
	if got := Clean(big, 100); len(got) > 100+len(Ellipsis) || !strings.HasSuffix(got, Ellipsis) || !utf8.ValidString(got) {
		t.Errorf("1 MB input: %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
	if got := Quote("x\x1b[2J\"y", 0); got != `"x[2J\"y"` {
		t.Errorf("Quote: %s", got)
	}
}

func FuzzClean(f *testing.F) {
	for _, h := range hostile {
		f.Add(h, 16)
	}
	f.Fuzz(func(t *testing.T, s string, n int) {
		n = n % 4096
		out := Clean(s, n)
		if !IsClean(out) {
			t.Fatalf("Clean(%q) = %q is not clean", s, out)
		}
		limit := n
		if limit <= 0 {
			limit = 200
		}
		if len(out) > limit+len(Ellipsis) {
			t.Fatalf("Clean(%q, %d) = %d bytes", s, n, len(out))
		}
		if q := Quote(s, n); !IsClean(q) {
			t.Fatalf("Quote(%q) = %q", s, q)
		}
	})
}

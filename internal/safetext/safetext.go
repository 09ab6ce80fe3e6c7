// Package safetext is the one cleaner for server-controlled text (S22):
// error codes and descriptions, HTTP status lines, TLS errors, claim values
// such as sub, a device user_code. Everything that reaches an error string,
// a log line, the terminal or an HTML page from a server goes through
// [Clean] (or [Quote] where it is printed).
//
// Clean removes C0 controls (tab, CR and LF become a space), DEL, C1
// controls (U+0080–U+009F, which a terminal may read as ESC sequences:
// U+009B is a one-character CSI), bytes that are not valid UTF-8, the bidi
// override, embedding and isolate characters (U+202A–U+202E,
// U+2066–U+2069) and the implicit marks (LRM, RLM, ALM), and the line and
// paragraph separators U+2028/U+2029. It bounds the length. It does not
// escape HTML: html/template does that where text goes into a page.
package safetext

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Ellipsis marks text cut at the bound.
const Ellipsis = "…"

// Redacted is the module's one marker for a value that is never shown (a
// token, a secret, a key): printed types and scrubbed server text say it
// where the value would be.
const Redacted = "redacted"

// Present is what a printed type shows for a secret field: Redacted when
// it is set, "none" when it is not; never the value.
func Present(set bool) string {
	if set {
		return Redacted
	}
	return "none"
}

// unsafe reports whether r must not reach a terminal, log or page.
func unsafe(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f: // ALM, LRM, RLM
		return true
	case r >= 0x202a && r <= 0x202e: // LRE, RLE, PDF, LRO, RLO
		return true
	case r >= 0x2066 && r <= 0x2069: // LRI, RLI, FSI, PDI
		return true
	case r == 0x2028, r == 0x2029:
		return true
	}
	return false
}

// Clean returns s without the characters listed in the package doc, cut to
// at most max bytes of kept text (at a rune boundary, followed by an
// ellipsis when something was cut). Whitespace controls (tab, LF, CR)
// become one space. max <= 0 means 200. Clean reads at most what it needs:
// a megabyte of input costs no more than max bytes of work past the kept
// text's end.
func Clean(s string, max int) string {
	if max <= 0 {
		max = 200
	}
	var b strings.Builder
	b.Grow(min(len(s), max))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r == utf8.RuneError && size <= 1 {
			continue // invalid UTF-8: a raw C1 byte would land here
		}
		if r == '\t' || r == '\n' || r == '\r' {
			r = ' '
		} else if unsafe(r) {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > max {
			b.WriteString(Ellipsis)
			return b.String()
		}
		b.WriteRune(r)
	}
	return b.String()
}

// IsClean reports whether s is valid UTF-8 free of every character Clean
// removes or replaces. Use it to refuse values that must be shown exactly
// or not at all (a device user_code, a verification URI).
func IsClean(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if (r == utf8.RuneError && size <= 1) || unsafe(r) {
			return false
		}
	}
	return true
}

// Quote is Clean followed by a Go-syntax double-quoted string, for
// printing server text where its start and end must be visible.
func Quote(s string, max int) string {
	return strconv.Quote(Clean(s, max))
}

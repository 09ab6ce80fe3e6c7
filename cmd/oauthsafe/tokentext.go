package main

import (
	"errors"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// Tokens are server text (S22): what `token` prints and the git helper
// writes is refused, never cleaned, when it holds anything a token cannot
// hold. A cleaned token would be another token; a raw one could carry
// terminal escape sequences (ESC, OSC, a C1 CSI) or, to git, a newline
// and a second attribute (host=, username=).

// errTokenText refuses a token that is not visible ASCII. It never quotes
// the token.
var errTokenText = errors.New("the server issued a token holding control characters, white space or non-ASCII characters (a token is visible ASCII, RFC 6749 appendix A.12); it is not printed: report it to the server's operator")

// errGitValue refuses a value for git that holds a control character: a
// newline would start another attribute.
var errGitValue = errors.New("a value for git holds a control character; nothing is answered")

// checkTokenText returns errTokenText unless every byte of tok is visible
// ASCII (0x21–0x7E): no control character, no white space, no DEL, no C1
// control, no other non-ASCII byte.
func checkTokenText(tok string) error {
	for i := 0; i < len(tok); i++ {
		if tok[i] < 0x21 || tok[i] > 0x7e {
			return errTokenText
		}
	}
	return nil
}

// checkGitValue returns errGitValue when v holds a control character (C0,
// DEL, C1), a bidi control or invalid UTF-8 (safetext's rule).
func checkGitValue(v string) error {
	if !safetext.IsClean(v) {
		return errGitValue
	}
	return nil
}

package validate

import "strings"

// hintError adds a Hint (what to do) to a verification error; the error
// and its sentinels are unchanged. strictnet.Hint finds it in any chain.
// A hint never holds a token-derived value.
type hintError struct {
	error
	hint string
}

func (e *hintError) Unwrap() error { return e.error }

// Hint says what to do about the error.
func (e *hintError) Hint() string { return e.hint }

// issuerHint gives a mismatched iss a hint when it differs from the
// configured issuer only by a trailing slash: the usual configuration
// mistake. The token's value is not repeated (it is not trusted): the
// hint points at the provider's discovery document instead.
func issuerHint(err error, got, want string) error {
	if got != want && strings.TrimSuffix(got, "/") == strings.TrimSuffix(want, "/") {
		return &hintError{err, "the token's iss differs from the configured issuer only by a trailing slash: configure exactly the issuer your provider's discovery document names (issuers are compared exactly)"}
	}
	return err
}

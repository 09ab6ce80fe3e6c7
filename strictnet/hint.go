package strictnet

import (
	"crypto/x509"
	"errors"
	"fmt"
	"syscall"

	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// ConnError is a server the strict client could not reach or could not
// trust: a refused connection, or a certificate that does not verify (an
// authority not in the roots, a host name it does not name, an expired
// certificate). Error is the cause's message; errors.As reaches the cause
// (x509.UnknownAuthorityError, syscall.ECONNREFUSED, …). [Hint] says what
// to do. The errors of oauthclient, apiclient and validate that a server's
// address or certificate caused wrap one.
type ConnError struct {
	Addr string // the server's host:port
	Err  error
	hint string
}

func (e *ConnError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *ConnError) Unwrap() error { return e.Err }

// Hint returns, in one sentence, what to do about err: the Hint of the
// first error in err's chain that has a Hint method (oauthclient's issuer
// mismatch, validate's errors, …), else the hint of a [*ConnError] in it
// (it names the server's address and configuration fields), or "" when
// there is none. A hint holds no credential (S19) and no raw server text
// (S22).
func Hint(err error) string {
	var h interface{ Hint() string }
	if errors.As(err, &h) {
		return h.Hint()
	}
	var ce *ConnError
	if errors.As(err, &ce) {
		return ce.hint
	}
	return ""
}

// connError gives err (from dialing or verifying addr) a hint when its
// cause is one a person can act on; other errors are returned as they are.
func connError(addr string, err error) error {
	if err == nil {
		return nil
	}
	where := safetext.Clean(addr, 260)
	var (
		ua  x509.UnknownAuthorityError
		uap *x509.UnknownAuthorityError
		hn  x509.HostnameError
		hnp *x509.HostnameError
		ci  x509.CertificateInvalidError
		cip *x509.CertificateInvalidError
	)
	var hint string
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		hint = fmt.Sprintf("nothing accepts connections at %s: check the URL's host and port, and that the server is running", where)
	case errors.As(err, &ua), errors.As(err, &uap):
		hint = fmt.Sprintf("the certificate of %s is signed by an authority the roots do not hold: if the server uses a private CA, load its certificate with strictnet.RootsFromFile and set it as strictnet.Config.RootCAs (the CLI: --ca-file)", where)
	case errors.As(err, &hn), errors.As(err, &hnp):
		hint = fmt.Sprintf("the certificate of %s does not name that host: check the URL's host name", where)
	case errors.As(err, &ci), errors.As(err, &cip):
		hint = fmt.Sprintf("the certificate of %s is not valid now (expired or not yet valid): check the server's certificate and this machine's clock", where)
	default:
		return err
	}
	return &ConnError{Addr: addr, Err: err, hint: hint}
}

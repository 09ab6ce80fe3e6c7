package netrule

import (
	"net/http"
	"time"
)

// DefaultTimeout bounds a server call when strictnet.Config.Timeout is
// zero: the module's one default for server calls (30 s).
const DefaultTimeout = 30 * time.Second

// ClientOwned is set by package strictnet: whether c was built by
// strictnet.NewClient (a copy of such a client with another
// CheckRedirect, Timeout or Jar still is; a client whose Transport was
// replaced or wrapped is not). validate refuses every other client.
var ClientOwned func(c *http.Client) bool

// PanicError is returned by the strict transport when the caller's Wrap
// RoundTripper panicked. The panic is recovered (it is the caller's code,
// and it must not end a process between a token request and the write of
// its outcome); the server's answer, when there was one, reaches the SDK
// through the call's AnswerSlot, never through this error, which holds no
// request, response or body.
type PanicError struct {
	Value string // the panic value's type
}

func (e *PanicError) Error() string {
	return "the Wrap RoundTripper panicked (" + e.Value + ")"
}

package resourceclient

import (
	"errors"
	"strconv"
	"strings"

	"github.com/oauthsafe/oauthsafe/internal/resmeta"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

var (
	// ErrResourceMismatch: the protected resource metadata names another
	// resource than the URL it was found for (RFC 9728 §3.3). Nothing is
	// requested from the authorization servers it names. An error matching
	// it is a *strictnet.PolicyError.
	ErrResourceMismatch = resmeta.ErrResourceMismatch
	// ErrNotWithinResource: a request goes to a URL outside the resource
	// (another origin, or a path not under the resource's path by whole
	// segments). It is refused before anything is sent. It is a
	// *strictnet.PolicyError.
	ErrNotWithinResource error = &strictnet.PolicyError{Reason: "resourceclient: a token goes only to URLs within its resource"}
	// ErrRegistration: the client could not be registered (no registration
	// endpoint, or the server refused or answered badly).
	ErrRegistration = errors.New("resourceclient: client registration failed")
	// ErrBrowser: the browser step returned no redirect URL.
	ErrBrowser = errors.New("resourceclient: the browser step failed")
)

// StepUpError is returned when a resource still answers 403
// insufficient_scope after MaxStepUps re-authorizations for one request,
// or asks for nothing a new authorization could add (a scope granted
// already, or beyond ScopeCeiling); match it with errors.As. Scopes are
// the scopes last asked for (server text: escape before display). A plain
// value.
type StepUpError struct {
	Attempts int      // re-authorizations made for the request
	Scopes   []string // the scopes the resource still asked for
}

func (e *StepUpError) Error() string {
	return "resourceclient: step-up limit reached after " + strconv.Itoa(e.Attempts) + " re-authorizations (the resource asks for " + safetext.Clean(strings.Join(e.Scopes, " "), 200) + ")"
}

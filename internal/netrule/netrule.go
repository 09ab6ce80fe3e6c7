// Package netrule holds the network rules shared by strictnet, oauthclient,
// apiclient and validate: the one check of a server URL, the endpoint kind
// a server call names in its context for the log event, and the strict
// client of API calls (not bounded: the API is the caller's).
package netrule

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

type endpointKey struct{}

// WithEndpoint names the kind of server call made under ctx ("token",
// "jwks", "introspection"…) for the log event.
func WithEndpoint(ctx context.Context, kind string) context.Context {
	return context.WithValue(ctx, endpointKey{}, kind)
}

// Endpoint returns the kind named in ctx, or "" when none is.
func Endpoint(ctx context.Context) string {
	k, _ := ctx.Value(endpointKey{}).(string)
	return k
}

type answerKey struct{}

// AnswerSlot receives the server's answer to a call whose caller's Wrap
// failed (returned an error or panicked) after the strict transport got
// the answer: the server may have acted (rotated a refresh token), so the
// SDK still reads what it said. The strict transport fills Response, its
// body read into memory, at most once; it never reaches an error. A call
// carrying a slot is also sent at most once: a wrapper's second send is
// refused (its values are single-use).
type AnswerSlot struct{ Response *http.Response }

// WithAnswerSlot returns ctx carrying slot, for a call through a strict client.
func WithAnswerSlot(ctx context.Context, slot *AnswerSlot) context.Context {
	return context.WithValue(ctx, answerKey{}, slot)
}

// AnswerSlotOf returns the slot carried by ctx, or nil.
func AnswerSlotOf(ctx context.Context) *AnswerSlot {
	s, _ := ctx.Value(answerKey{}).(*AnswerSlot)
	return s
}

// NewClient is set by package strictnet: the strict client of cfg, a
// strictnet.Config set as the HTTP field of another package's Config, so
// that a refused field is named "HTTP.<field>". With api, the client is
// for API calls: its log events name the endpoint "api" and its response
// bodies are not bounded (the API is the caller's). oauthclient and
// apiclient build their clients with it.
var NewClient func(cfg any, api bool) (*http.Client, error)

// ClientAllowsLoopbackHTTP is set by package strictnet: whether c is a
// strict client built with AllowLoopbackHTTP (validate checks its URLs
// against the client it is given).
var ClientAllowsLoopbackHTTP func(c *http.Client) bool

// HTTPSProblem is the module's one rule for a server URL (S1): "" for an
// absolute https URL with a host, no user info and no fragment, else what
// is wrong with it, to follow the URL's name in an error. With
// loopbackHTTP (strictnet.Config.AllowLoopbackHTTP), an http URL whose
// host is a loopback host ([LoopbackHost]) is accepted too.
func HTTPSProblem(raw string, loopbackHTTP bool) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "":
		return "is not an absolute URL"
	case u.Scheme == "http" && loopbackHTTP && LoopbackHost(u.Hostname()):
	case u.Scheme != "https" && loopbackHTTP:
		return "must use https (or http on localhost, 127.0.0.0/8 or ::1)"
	case u.Scheme != "https":
		return "must use https"
	}
	switch {
	case u.User != nil:
		return "must not carry user info"
	case u.Fragment != "":
		return "must not have a fragment"
	}
	return ""
}

// LoopbackHost reports whether host (without port or brackets) is one of
// the hosts plain http may reach with AllowLoopbackHTTP: the name
// localhost, an address of 127.0.0.0/8, or ::1.
func LoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SameOrigin reports whether a and b have the same origin: scheme and
// host compared case-insensitively, the scheme's default port equal to
// none.
func SameOrigin(a, b *url.URL) bool {
	if a == nil || b == nil || !strings.EqualFold(a.Scheme, b.Scheme) {
		return false
	}
	ha, hb := a.Host, b.Host
	if strings.EqualFold(a.Scheme, "https") {
		ha, hb = strings.TrimSuffix(ha, ":443"), strings.TrimSuffix(hb, ":443")
	} else if strings.EqualFold(a.Scheme, "http") {
		ha, hb = strings.TrimSuffix(ha, ":80"), strings.TrimSuffix(hb, ":80")
	}
	return strings.EqualFold(ha, hb)
}

// LoopbackWarning is the message strictnet logs once for each client built
// with AllowLoopbackHTTP.
const LoopbackWarning = "oauthsafe: AllowLoopbackHTTP is on: this client calls plain http servers on localhost, 127.0.0.0/8 and ::1 (local development and conformance suites only)"

// LoopbackHTTPURL reports whether u is plain http to a loopback host.
func LoopbackHTTPURL(u *url.URL) bool {
	return u != nil && strings.EqualFold(u.Scheme, "http") && LoopbackHost(u.Hostname())
}

// MaxResponseSize and ErrResponseTooLarge are strictnet's (S18), defined
// here so that every reader of server bodies shares them with the
// transport's own bound.
const MaxResponseSize = 1 << 20

// ErrResponseTooLarge is strictnet.ErrResponseTooLarge.
var ErrResponseTooLarge = errors.New("oauthsafe: server response larger than 1 MiB")

// ReadBody reads a whole server body of at most MaxResponseSize bytes, and
// fails with ErrResponseTooLarge when there is more: the second bound,
// after the strict transport's, at the point of use.
func ReadBody(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxResponseSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxResponseSize {
		return nil, ErrResponseTooLarge
	}
	return b, nil
}

// StripURL drops the URL (which may hold a query) of a *url.Error, keeping
// its cause reachable.
func StripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

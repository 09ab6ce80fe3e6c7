package strictnet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/netrule"
)

// log writes the one event of a call: endpoint kind, method, the URL with
// query values and user info removed, status, duration and an error class.
// Never a header, a body, a query value or an error text (which may quote
// server text).
func (t *transport) log(req *http.Request, resp *http.Response, err error, d time.Duration) {
	// The handler is the caller's code: a panic in it loses one log event,
	// never the answer (a rotated refresh token in it).
	defer func() { recover() }()
	attrs := []slog.Attr{
		slog.String("endpoint", t.endpointOf(req)),
		slog.String("method", req.Method),
		slog.String("url", redactURL(req.URL)),
		slog.Duration("duration", d),
	}
	level := slog.LevelInfo
	if resp != nil {
		attrs = append(attrs, slog.Int("status", resp.StatusCode))
	}
	if err != nil {
		level = slog.LevelWarn
		attrs = append(attrs, slog.String("error", errorClass(err)))
	}
	t.logger.LogAttrs(req.Context(), level, "oauthsafe: server call", attrs...)
}

// redactURL returns scheme://host/path of u, with each query parameter's
// name kept and its value dropped, and no user info or fragment.
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	out := r.String()
	if u.RawQuery != "" {
		names := []string{}
		for _, kv := range strings.Split(u.RawQuery, "&") {
			k, _, _ := strings.Cut(kv, "=")
			if k, err := url.QueryUnescape(k); err == nil && k != "" {
				names = append(names, url.QueryEscape(k)+"=")
			}
		}
		out += "?" + strings.Join(names, "&")
	}
	return out
}

// errorClass sorts err into a few fixed words for logs: canceled, timeout,
// tls, pin, dns, network, policy or other.
func errorClass(err error) string {
	var (
		pe  *refusal
		dns *net.DNSError
		ne  net.Error
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		op  *net.OpError
	)
	switch {
	case errors.As(err, &pe) && pe.pin:
		return "pin"
	case errors.As(err, &pe):
		return "policy"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &ua), errors.As(err, &he), errors.As(err, &ci), isTLSAlert(err):
		return "tls"
	case errors.As(err, &dns):
		return "dns"
	case errors.As(err, &op):
		return "network"
	}
	return "other"
}

func isTLSAlert(err error) bool {
	var (
		ae tls.AlertError
		ve *tls.CertificateVerificationError
		re tls.RecordHeaderError
	)
	return errors.As(err, &ae) || errors.As(err, &ve) || errors.As(err, &re)
}

// endpointOf is the kind of server call req is, as its context names it,
// else as the client was made for.
func (t *transport) endpointOf(req *http.Request) string {
	if k := netrule.Endpoint(req.Context()); k != "" {
		return k
	}
	if t.endpoint != "" {
		return t.endpoint
	}
	return "unknown"
}

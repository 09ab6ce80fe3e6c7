package callback

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// Limits on a callback request. A real authorization response is a handful
// of short parameters; anything beyond these is refused before any lookup.
const (
	maxRawParams  = 16 << 10 // raw query or form body, bytes
	maxParams     = 16       // distinct parameter names
	maxParamValue = 4096     // bytes per value (codes, error_description...)
	maxReturnTo   = 1024     // bytes of a return-to path; it travels in the cookie
)

// Errors of this package. Every error the Handler reports (to
// Config.OnError) matches one of these with errors.Is, or is an error of
// the oauthclient package (oauthclient.ErrFlowExpired, *oauthclient.AuthError,
// ...). No error string contains a code, state, token or cookie value.
var (
	// ErrBadRequest: the callback request is malformed: wrong method or
	// content type, repeated or oversized parameters, too many parameters,
	// or both code and error.
	ErrBadRequest = errors.New("callback: malformed callback request")
	// ErrNoFlow: the request's state is missing, or no pending flow of
	// this browser matches it (wrong state, replayed callback, a flow that
	// already completed, or a cookie the browser let expire). No token
	// request is made and no pending flow is touched.
	ErrNoFlow = errors.New("callback: no pending login matches this state")
	// ErrBadCookie: a cookie named for this state exists but cannot be
	// opened: tampered, sealed with a key that is not configured, or moved
	// from another flow. No token request is made.
	ErrBadCookie = errors.New("callback: pending-login cookie rejected")
	// ErrReturnTo: a return-to URL is not a same-origin path.
	ErrReturnTo = errors.New("callback: return-to URL refused")
	// ErrOnLogin wraps the error returned by Config.OnLogin.
	ErrOnLogin = errors.New("callback: OnLogin failed")
)

// errMethod is the ErrBadRequest for a method other than GET or POST.
var errMethod = fmt.Errorf("%w: method not allowed", ErrBadRequest)

func badRequest(reason string) error { return fmt.Errorf("%w: %s", ErrBadRequest, reason) }

// parseCallback extracts the authorization response parameters from a GET
// (query) or a POST (response_mode=form_post body). Each parameter must
// appear exactly once, values are bounded, and code and error together are
// refused. It never panics on any input.
func parseCallback(r *http.Request) (url.Values, error) {
	var raw string
	switch r.Method {
	case http.MethodGet:
		raw = r.URL.RawQuery
	case http.MethodPost:
		if r.URL.RawQuery != "" {
			return nil, badRequest("form_post response with a query")
		}
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/x-www-form-urlencoded" {
			return nil, badRequest("form_post body is not application/x-www-form-urlencoded")
		}
		if r.Body == nil {
			return nil, badRequest("form_post without a body")
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, maxRawParams+1))
		if err != nil {
			return nil, badRequest("form_post body unreadable")
		}
		raw = string(b)
	default:
		return nil, errMethod
	}
	if len(raw) > maxRawParams {
		return nil, badRequest("parameters too large")
	}
	params, err := url.ParseQuery(raw)
	if err != nil {
		return nil, badRequest("parameters are not URL-encoded")
	}
	if len(params) > maxParams {
		return nil, badRequest("too many parameters")
	}
	for name, vs := range params {
		if len(vs) != 1 {
			// The name is attacker-controlled: report only known ones.
			if known[name] {
				return nil, badRequest("repeated parameter " + name)
			}
			return nil, badRequest("repeated parameter")
		}
		if len(vs[0]) > maxParamValue {
			return nil, badRequest("oversized parameter value")
		}
	}
	if _, hasErr := params["error"]; hasErr {
		if _, hasCode := params["code"]; hasCode {
			return nil, badRequest("both code and error")
		}
	}
	return params, nil
}

var known = map[string]bool{"code": true, "state": true, "error": true, "error_description": true, "error_uri": true, "iss": true}

// checkReturnTo accepts only a same-origin, path-absolute URL reference:
// "/path", optionally with a query and fragment. It refuses anything a
// browser or a later decoding step could read as another origin:
// scheme-relative "//host", "/\host", schemes ("https:evil",
// "javascript:"), leading whitespace or control characters ("%09//evil"),
// backslashes, dot segments, non-ASCII, and the percent-encoded forms of
// all of these ("/%2F%2Fevil", "/%5Cevil", double encoding).
func checkReturnTo(s string) error {
	if s == "" || len(s) > maxReturnTo {
		return fmt.Errorf("%w: empty or longer than %d bytes", ErrReturnTo, maxReturnTo)
	}
	// Decode repeatedly: every layer must pass the same checks, so no
	// encoding of a forbidden form gets through.
	cur := s
	for layer := 0; ; layer++ {
		if err := checkReturnToLayer(cur, layer == 0); err != nil {
			return err
		}
		next, err := url.PathUnescape(cur)
		if err != nil {
			return fmt.Errorf("%w: bad percent-encoding", ErrReturnTo)
		}
		if next == cur {
			break
		}
		if layer == 3 {
			return fmt.Errorf("%w: too many encoding layers", ErrReturnTo)
		}
		cur = next
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return fmt.Errorf("%w: not a same-origin path", ErrReturnTo)
	}
	return nil
}

// checkReturnToLayer checks one decoding layer of a return-to URL. A
// decoded space is allowed ("/a%20b"); a raw one is not.
func checkReturnToLayer(s string, raw bool) error {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") {
		return fmt.Errorf("%w: must start with a single /", ErrReturnTo)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '\\' || (raw && c == ' ') {
			return fmt.Errorf("%w: control, space, non-ASCII or backslash", ErrReturnTo)
		}
	}
	path := s
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("%w: dot segment", ErrReturnTo)
		}
	}
	return nil
}

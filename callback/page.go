package callback

import (
	"bytes"
	"html/template"
	"net/http"
	"strconv"
)

// This file holds the response helpers shared by every browser-facing
// endpoint of the package: the web Handler, Start, and the desktop loopback
// receiver (callback/loopback*.go), which must answer with the same headers
// and the same kind of page.

// securityHeaders are the S15 headers. Every response of this package
// carries exactly these values; tests compare them verbatim.
var securityHeaders = [...][2]string{
	{"Cache-Control", "no-store"},
	{"Pragma", "no-cache"},
	{"Referrer-Policy", "no-referrer"},
	{"Content-Security-Policy", "default-src 'none'"},
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "DENY"},
}

// setSecurityHeaders sets the S15 headers on h, replacing any value already
// there (for example one an OnLogin function set). Call it before writing
// the status of any response, redirects included. The loopback receiver
// uses it too.
func setSecurityHeaders(h http.Header) {
	for _, kv := range securityHeaders {
		h.Set(kv[0], kv[1])
	}
}

// page is the content of a result or error page. All fields are plain
// text: html/template escapes them, so attacker-controlled text such as an
// error_description can be shown safely. Never put a code, state, token or
// verifier in a page.
type page struct {
	Title   string // also the heading
	Message string // the sentence the user reads
	Detail  string // optional, e.g. the server's error code and description
}

// pageTemplate loads nothing from anywhere (no style, script, image or
// font), so it renders under Content-Security-Policy: default-src 'none'
// without exemptions.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="referrer" content="no-referrer"><title>{{.Title}}</title></head>
<body>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{- with .Detail}}
<p>{{.}}</p>
{{- end}}
</body>
</html>
`))

// writePage answers with status and a plain HTML page, with the S15 headers.
// It is the only way this package (loopback receiver included) writes a
// body.
func writePage(w http.ResponseWriter, status int, pg page) {
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, pg); err != nil {
		// Only plain strings are rendered: this cannot fail. Answer
		// without a body rather than with a partial page.
		buf.Reset()
	}
	h := w.Header()
	setSecurityHeaders(h)
	h.Del("Location")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// seeOther answers 303 See Other to location, with the S15 headers and no
// body. location must already be validated (a same-origin path, or the
// authorization endpoint); it is sent as is.
func seeOther(w http.ResponseWriter, location string) {
	h := w.Header()
	setSecurityHeaders(h)
	h.Del("Content-Type")
	h.Set("Location", location)
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusSeeOther)
}

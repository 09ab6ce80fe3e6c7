package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"
)

const gitCredentialHelp = `
Usage: oauthsafe git-credential [--profile NAME] [--allow URL]... [--username NAME] get|store|erase

A git credential helper (see gitcredentials(7)). git runs it with "get" and
the request on stdin; it answers with the profile's access token as the
password (from the agent, like ` + "`oauthsafe token`" + `), the user name "oauth2"
(or the one git sent, or --username) and password_expiry_utc. "store" is
ignored (nothing is ever written); "erase", which git runs when the server
refused the token, makes the agent forget its access token so the next
"get" refreshes.

It answers only for the profile's API origins: the https URLs given with
--allow here, and the profile's --resource URLs from login. The host (and
port) must match exactly; when an allowed URL has a path, git must send the
path (credential.useHttpPath true) and it must lie under that path. For
anything else, plain http included, it answers nothing, says why on stderr,
and git goes on with its other helpers. It refuses a profile whose tokens
are DPoP-bound (login --dpop): git can send no proof.

Examples:
  git config --global credential.https://git.example.com.helper "!oauthsafe git-credential --profile work --allow https://git.example.com"
  printf 'protocol=https\nhost=git.example.com\n\n' | oauthsafe git-credential --allow https://git.example.com get
`

// maxGitCredentialInput bounds what is read from git.
const maxGitCredentialInput = 64 << 10

// gitCredentialOptions are the flags and the action of
// `oauthsafe git-credential`.
type gitCredentialOptions struct {
	profile  string
	username string
	noAgent  bool
	allow    stringList
	// action is git's: get, store or erase.
	action string
}

func runGitCredential(ctx context.Context, e *env, args []string) int {
	o, code, ok := parseGitCredentialOptions(e, args)
	if !ok {
		return code
	}
	in := e.stdin
	if in == nil {
		in = strings.NewReader("")
	}
	attrs, err := readGitCredential(in)
	if err != nil {
		return e.fail(fmt.Errorf("git-credential: %w", err))
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	switch o.action {
	case "get":
		return o.get(ctx, e, attrs)
	case "store":
		return exitOK
	case "erase":
		agentForget(ctx, e, o.profile)
		return exitOK
	default:
		return e.usageError("git-credential", "unknown action %q (get, store or erase)", clean(o.action))
	}
}

// parseGitCredentialOptions parses git-credential's flags and action; ok
// is false with the exit code when the command ends there (--help, a
// usage error).
func parseGitCredentialOptions(e *env, args []string) (o *gitCredentialOptions, code int, ok bool) {
	o = &gitCredentialOptions{}
	fs := flag.NewFlagSet("git-credential", flag.ContinueOnError)
	fs.StringVar(&o.profile, "profile", currentProfile(), "profile `NAME` saved by login")
	fs.StringVar(&o.username, "username", "", "user `NAME` to answer when git sends none (default \"oauth2\")")
	fs.BoolVar(&o.noAgent, "no-agent", false, "do not use the agent: refresh directly")
	fs.Var(&o.allow, "allow", "answer for this https `URL` (host, and path if any); repeatable")
	fs.Usage = usageFunc(e, fs, gitCredentialHelp)
	if code, ok := parseFlagsN(e, fs, args, 1); !ok {
		return nil, code, false
	}
	if fs.NArg() != 1 {
		return nil, e.usageError("git-credential", "expected one of get, store or erase"), false
	}
	if _, err := profilePath(o.profile); err != nil {
		return nil, e.usageError("git-credential", "%v", err), false
	}
	o.action = fs.Arg(0)
	return o, exitOK, true
}

// get answers git's "get": the access token as the password, for the
// profile's API origins only.
func (o *gitCredentialOptions) get(ctx context.Context, e *env, attrs map[string]string) int {
	origins := []string(o.allow)
	if p, err := loadProfile(o.profile); err == nil {
		origins = append(origins, p.Resources...)
	}
	if why := gitDeclines(attrs, origins); why != "" {
		// A bearer token goes only over https (S14) and only to the
		// profile's API origins: answer nothing, and git goes on with
		// its other helpers.
		e.errorf("git-credential: declined: %s", why)
		return exitOK
	}
	// stdin is git's, not a terminal: never prompt for a passphrase.
	ne := &env{stdout: e.stdout, stderr: e.stderr, getenv: e.getenv, cmd: e.cmd}
	tok, err := getToken(ctx, ne, o.profile, o.noAgent, tokenWant{})
	if err == nil {
		err = bearerOnly(tok)
	}
	if err != nil {
		return e.fail(fmt.Errorf("git-credential: %w", err))
	}
	user := o.userName(attrs)
	// Nothing with a newline (or any control) reaches git: it would
	// add attributes (S22).
	if err := checkGitValue(user); err != nil {
		return e.fail(fmt.Errorf("git-credential: the user name: %w", err))
	}
	if err := checkTokenText(tok.AccessToken); err != nil {
		return e.fail(fmt.Errorf("git-credential: %w", err))
	}
	writeGitCredential(e.stdout, user, tok)
	return exitOK
}

// userName is the user name to answer: git's, else --username, else
// "oauth2".
func (o *gitCredentialOptions) userName(attrs map[string]string) string {
	user := attrs["username"]
	if user == "" {
		user = o.username
	}
	if user == "" {
		user = "oauth2"
	}
	return user
}

// writeGitCredential writes the answer to git in one write: the user
// name, the token as the password and its expiry.
func writeGitCredential(w io.Writer, user string, tok *agentToken) {
	var b strings.Builder
	fmt.Fprintf(&b, "username=%s\npassword=%s\n", user, tok.AccessToken)
	if !tok.Expiry.IsZero() {
		fmt.Fprintf(&b, "password_expiry_utc=%d\n", tok.Expiry.Unix())
	}
	io.WriteString(w, b.String())
}

// readGitCredential parses git's key=value lines up to a blank line or EOF.
// Values with a newline or NUL cannot occur (git refuses them); a line
// without '=' is an error.
func readGitCredential(r io.Reader) (map[string]string, error) {
	attrs := map[string]string{}
	sc := bufio.NewScanner(io.LimitReader(r, maxGitCredentialInput))
	sc.Buffer(make([]byte, 4096), maxGitCredentialInput)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" || strings.ContainsRune(v, 0) {
			return nil, errors.New("malformed input line from git")
		}
		if strings.HasSuffix(k, "[]") {
			continue // multi-valued attributes (wwwauth[]) are not needed
		}
		attrs[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading git's request: %w", err)
	}
	if u := attrs["username"]; checkGitValue(u) != nil {
		return nil, errors.New("malformed username from git")
	}
	return attrs, nil
}

// gitDeclines says why git's request is not answered, or "" when its
// protocol, host and path are those of one of the allowed origins.
func gitDeclines(attrs map[string]string, origins []string) string {
	if attrs["protocol"] != "https" {
		return fmt.Sprintf("protocol %q: a token is only ever sent over https", clean(attrs["protocol"]))
	}
	host := attrs["host"]
	if host == "" {
		return "git sent no host"
	}
	if len(origins) == 0 {
		return fmt.Sprintf("host %s: the profile has no API origin; add --allow https://%s to the helper's configuration", clean(host), clean(host))
	}
	pathNeeded := false
	for _, o := range origins {
		u, err := url.Parse(o)
		if err != nil || u.Scheme != "https" || !strings.EqualFold(u.Host, host) {
			continue
		}
		prefix, ok := cleanGitPath(u.Path)
		if !ok {
			continue // an allowed URL with ".." above its root allows nothing
		}
		if len(prefix) == 0 {
			return ""
		}
		raw, ok := attrs["path"]
		if !ok {
			pathNeeded = true
			continue
		}
		if p, ok := cleanGitPath(raw); ok && pathUnder(p, prefix) {
			return ""
		}
	}
	if pathNeeded {
		return fmt.Sprintf("host %s: the allowed URL has a path and git sent none; set credential.useHttpPath true", clean(host))
	}
	return fmt.Sprintf("host %s is not one of the profile's API origins (%s); add --allow for it", clean(host), clean(strings.Join(origins, " ")))
}

// cleanGitPath returns the segments of a URL path as the server will
// resolve it (path.Clean: "." and "a/.." removed, repeated slashes
// collapsed), or false when it cannot be compared safely: a ".." left
// after cleaning (above the root), a backslash (a separator to some
// servers), or a "." or ".." segment with ";parameters" (Tomcat and Spring
// drop those, so "..;" climbs there, while path.Clean keeps it as a name).
// Git sends the path decoded, so a remote URL's %2e%2e arrives as "..".
func cleanGitPath(p string) ([]string, bool) {
	if strings.ContainsRune(p, '\\') {
		return nil, false
	}
	for _, seg := range strings.Split(p, "/") {
		if name, _, params := strings.Cut(seg, ";"); params && (name == "." || name == "..") {
			return nil, false
		}
	}
	c := path.Clean(strings.Trim(p, "/"))
	if c == "." {
		return nil, true
	}
	segs := strings.Split(c, "/")
	if slices.Contains(segs, "..") {
		return nil, false
	}
	return segs, true
}

// pathUnder reports whether p lies under prefix, segment by segment (so
// "teamX" is not under "team").
func pathUnder(p, prefix []string) bool {
	return len(p) >= len(prefix) && slices.Equal(p[:len(prefix)], prefix)
}

package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

func init() {
	register(command{name: "git-credential", summary: "a git credential helper answering with the access token (get|store|erase)", run: runGitCredential})
}

const gitCredentialHelp = `
Usage: oauthsafe git-credential [--profile NAME] [--username NAME] get|store|erase

A git credential helper (see gitcredentials(7)). git runs it with "get" and
the request on stdin; it answers with the profile's access token as the
password (from the agent, like ` + "`oauthsafe token`" + `), the user name "oauth2"
(or the one git sent, or --username) and password_expiry_utc. "store" is
ignored (nothing is ever written); "erase", which git runs when the server
refused the token, makes the agent forget its access token so the next
"get" refreshes. It only answers for https, and refuses a profile whose
tokens are DPoP-bound (login --dpop): git can send no proof. Configure it for one host:

  git config --global credential.https://git.example.com.helper "!oauthsafe git-credential --profile work"
  git config --global credential.https://git.example.com.useHttpPath false

Examples:
  git config --global credential.https://git.example.com.helper "!oauthsafe git-credential"
  printf 'protocol=https\nhost=git.example.com\n\n' | oauthsafe git-credential get
`

// maxGitCredentialInput bounds what is read from git.
const maxGitCredentialInput = 64 << 10

func runGitCredential(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("git-credential", flag.ContinueOnError)
	profileFlag := fs.String("profile", defaultProfile, "profile `NAME` saved by login")
	username := fs.String("username", "", "user `NAME` to answer when git sends none (default \"oauth2\")")
	noAgent := fs.Bool("no-agent", false, "do not use the agent: refresh directly")
	fs.Usage = usageFunc(e, fs, gitCredentialHelp)
	if code, ok := parseFlagsN(e, fs, args, 1); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return e.usageError("git-credential", "expected one of get, store or erase")
	}
	if _, err := profilePath(*profileFlag); err != nil {
		return e.usageError("git-credential", "%v", err)
	}
	action := fs.Arg(0)
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
	switch action {
	case "get":
		if attrs["protocol"] != "https" {
			// A bearer token never travels over anything but https (S14):
			// answer nothing, and git goes on with its other helpers.
			return exitOK
		}
		// stdin is git's, not a terminal: never prompt for a passphrase.
		ne := &env{stdout: e.stdout, stderr: e.stderr, getenv: e.getenv}
		tok, err := getToken(ctx, ne, *profileFlag, *noAgent)
		if err == nil {
			err = bearerOnly(tok)
		}
		if err != nil {
			return e.fail(fmt.Errorf("git-credential: %w", err))
		}
		user := attrs["username"]
		if user == "" {
			user = *username
		}
		if user == "" {
			user = "oauth2"
		}
		var b strings.Builder
		fmt.Fprintf(&b, "username=%s\npassword=%s\n", user, tok.AccessToken)
		if !tok.Expiry.IsZero() {
			fmt.Fprintf(&b, "password_expiry_utc=%d\n", tok.Expiry.Unix())
		}
		io.WriteString(e.stdout, b.String())
		return exitOK
	case "store":
		return exitOK
	case "erase":
		agentForget(ctx, e, *profileFlag)
		return exitOK
	default:
		return e.usageError("git-credential", "unknown action %q (get, store or erase)", clean(action))
	}
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
	if u := attrs["username"]; strings.ContainsAny(u, "\n\x00") {
		return nil, errors.New("malformed username from git")
	}
	return attrs, nil
}

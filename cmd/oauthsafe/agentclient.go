package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/filelock"
	"github.com/oauthsafe/oauthsafe/internal/safetext"
)

// This file is the client side of the agent and what both sides share: the
// socket's directory and the wire protocol.
//
// Protocol: one JSON request, one JSON response per connection, each at
// most maxAgentMessage bytes, with deadlines on both sides. The socket is in
// a directory of mode 0700 owned by the user, and each side checks the
// other's uid (SO_PEERCRED or LOCAL_PEERCRED) on every connection.

const (
	// envNoAgent turns the agent off: `token` refreshes directly.
	envNoAgent = "OAUTHSAFE_NO_AGENT"
	// maxAgentMessage bounds a request or a response (a JWT access token
	// is a few KiB).
	maxAgentMessage = 256 << 10
	// agentStartWait bounds how long `token` waits for an agent it started.
	agentStartWait = 3 * time.Second
)

// agentCanStart is false in this package's in-process tests, whose
// executable is the test binary, not oauthsafe.
var agentCanStart = true

var (
	errAgentUnsupported = errors.New("the agent is not supported on " + runtime.GOOS)
	errAgentRunning     = errors.New("an agent is already running")
	errNoAgent          = errors.New("no agent is running")
)

// agentRequest is what a client asks. Op is "token", "forget", "status" or
// "stop"; Profile names a profile for "token" and "forget"; ConfigDir is
// the client's profile directory, so an agent never serves a client that
// sees other profiles under the same name.
type agentRequest struct {
	V         int    `json:"v"`
	Op        string `json:"op"`
	Profile   string `json:"profile,omitempty"`
	ConfigDir string `json:"config_dir,omitempty"`
	// Passphrase is the caller's passphrase of a file-store profile: the
	// agent serves the caller only a source opened with it (never one
	// opened with another caller's). It travels only over the agent's
	// socket, which answers the same uid alone.
	Passphrase string `json:"passphrase,omitempty"`
	// ClientSecret is the caller's client secret for the profile (from
	// the profile's secret file or the caller's OAUTHSAFE_CLIENT_SECRET):
	// the agent builds the caller's client with it and with nothing from
	// its own environment (agentcred.go). Same socket, same uid rule.
	ClientSecret string `json:"client_secret,omitempty"`
	// Force asks for a refresh even while the access token is valid.
	Force bool `json:"force,omitempty"`
	// IDToken asks for the ID token too, refreshed when it has expired.
	IDToken bool `json:"id_token,omitempty"`
}

// agentResponse is the agent's answer. Code is "" on success,
// "login_required" (exit 3), "unavailable" (the agent cannot serve this
// profile: the client refreshes directly) or "error".
type agentResponse struct {
	V        int            `json:"v"`
	Code     string         `json:"code,omitempty"`
	Error    string         `json:"error,omitempty"`
	Hint     string         `json:"hint,omitempty"` // what to do (hintFor), lines separated by \n
	Token    *agentToken    `json:"token,omitempty"`
	Profiles []agentProfile `json:"profiles,omitempty"`
	PID      int            `json:"pid,omitempty"`
	Started  time.Time      `json:"started,omitzero"`
}

// agentToken is an access token on the wire (never on disk).
type agentToken struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	Expiry      time.Time `json:"expiry,omitzero"`
	// IDToken and IDExpiry are set when the request asked for the ID
	// token (token --id-token).
	IDToken  string    `json:"id_token,omitempty"`
	IDExpiry time.Time `json:"id_expiry,omitzero"`
}

// agentProfile is what `agent status` shows of one profile: never a token.
type agentProfile struct {
	Name   string    `json:"name"`
	Expiry time.Time `json:"expiry,omitzero"`
}

// agentError is an error answered by the agent, with the agent's hint of
// what to do (the server error's type does not cross the socket).
type agentError struct{ code, msg, hint string }

func (e *agentError) Error() string { return "agent: " + e.msg }

func (e *agentError) Is(target error) bool {
	return e.code == "login_required" && target == errNoLogin
}

// agentDir returns the agent's directory, creating it: $XDG_RUNTIME_DIR/
// oauthsafe, or oauthsafe-UID in the system temporary directory. It must be
// a real directory (not a symlink) owned by the user with no group or other
// permission; otherwise the agent is not used.
func agentDir(getenv func(string) string) (string, error) {
	if runtime.GOOS == "windows" {
		return "", errAgentUnsupported
	}
	dir, err := filelock.UserDir(getenv)
	if err != nil {
		return "", fmt.Errorf("agent directory: %w", err)
	}
	return dir, nil
}

func agentSocket(dir string) string { return filepath.Join(dir, "agent.sock") }

// agentCall sends one request to the running agent. It returns errNoAgent
// when none answers, and an *agentError when the agent refused.
func agentCall(ctx context.Context, getenv func(string) string, req agentRequest, timeout time.Duration) (*agentResponse, error) {
	dir, err := agentDir(getenv)
	if err != nil {
		return nil, err
	}
	return agentCallAt(ctx, agentSocket(dir), req, timeout)
}

func agentCallAt(ctx context.Context, sock string, req agentRequest, timeout time.Duration) (*agentResponse, error) {
	var d net.Dialer
	d.Timeout = time.Second
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", errNoAgent, err)
	}
	defer conn.Close()
	uc := conn.(*net.UnixConn)
	// The agent must be ours too: never hand a request (or take a token)
	// from another user's process listening there.
	if uid, err := peerUID(uc); err != nil || uid != os.Getuid() {
		return nil, fmt.Errorf("%w (the socket's owner is not you)", errNoAgent)
	}
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	req.V = 1
	b, _ := json.Marshal(req)
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return nil, ctxOr(ctx, fmt.Errorf("agent: sending the request: %w", err))
	}
	uc.CloseWrite()
	body, err := io.ReadAll(io.LimitReader(conn, maxAgentMessage+1))
	if err != nil {
		return nil, ctxOr(ctx, fmt.Errorf("agent: reading the answer: %w", err))
	}
	if len(body) == 0 {
		return nil, errors.New("agent: the connection was closed without an answer (refused)")
	}
	if len(body) > maxAgentMessage {
		return nil, errors.New("agent: answer too large")
	}
	var res agentResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&res); err != nil || res.V != 1 {
		return nil, errors.New("agent: malformed answer")
	}
	if res.Code != "" {
		return &res, &agentError{code: res.Code, msg: safetext.Clean(res.Error, 2000), hint: cleanLines(res.Hint)}
	}
	return &res, nil
}

// ctxOr returns ctx's error when ctx ended (interrupt, timeout), else err.
func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// agentDisabled reports whether the user turned the agent off.
func agentDisabled(getenv func(string) string) bool {
	v := getenv(envNoAgent)
	return v != "" && v != "0" && v != "false"
}

// startAgent starts `oauthsafe agent run` in the background, detached from
// this process (its own session, stdin and stdout on /dev/null, stderr to a
// log in the agent directory that never holds a token), and waits until it
// answers. Several processes may race to start one: the agent's lock lets
// one win and the others exit.
func startAgent(ctx context.Context, getenv func(string) string) error {
	if !agentCanStart {
		return errors.New("starting an agent is disabled in this process")
	}
	dir, err := agentDir(getenv)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "agent.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(exe, "agent", "run")
	cmd.Env = withoutCredentials(os.Environ()) // credentials come with each request
	cmd.Stderr = logf
	cmd.Dir = "/"
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the agent: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	sock := agentSocket(dir)
	deadline := time.Now().Add(agentStartWait)
	for {
		if _, err := agentCallAt(ctx, sock, agentRequest{Op: "ping"}, time.Second); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("the agent did not start in time")
		}
		_ = exited // a loser of the start race exits at once; the winner answers
	}
}

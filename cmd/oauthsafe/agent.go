package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/engine"
	"github.com/oauthsafe/oauthsafe/oauthclient"

	"github.com/oauthsafe/oauthsafe/internal/filelock"
	"github.com/oauthsafe/oauthsafe/tokenstore"
)

const agentHelp = `
Usage: oauthsafe agent [start|stop|status|run] [--idle DURATION]

The agent keeps access tokens in memory, so that ` + "`oauthsafe token`" + `, kubectl
and git get a valid token without a refresh (and without a network request)
while it lasts, and so that many concurrent calls cause one refresh. Access
tokens are never written to disk; the refresh token stays in the store the
login chose (the OS keyring or an encrypted file).

One agent runs per user. ` + "`oauthsafe token`" + ` starts it on first use; it listens
on a Unix socket in $XDG_RUNTIME_DIR/oauthsafe (or oauthsafe-UID in the
temporary directory), a directory of mode 0700, answers only processes of
the same user (checked on every connection) and exits after --idle without
a request. It takes no credential from its own environment: each call
sends its caller's client secret (from the profile's secret file or
OAUTHSAFE_CLIENT_SECRET) and passphrase (OAUTHSAFE_FILE_PASSPHRASE), and
is served only from a token source opened with those. Set
OAUTHSAFE_NO_AGENT=1 (or pass --no-agent to token) to refresh directly
instead; on systems without Unix sockets (Windows) that is what happens.

  start    start the agent in the background (the default)
  stop     stop it; the access tokens it held are forgotten
  status   say whether it runs and which profiles it holds a token for
  run      run it in the foreground (for a service manager)

Examples:
  oauthsafe agent status
  oauthsafe agent stop
  oauthsafe agent run --idle 8h
`

// defaultAgentIdle is how long the agent waits for a request before it exits.
const defaultAgentIdle = 30 * time.Minute

// agentOptions are the subcommand and the flags of `oauthsafe agent`.
type agentOptions struct {
	// sub is start (the default), stop, status or run.
	sub  string
	idle time.Duration
}

func runAgent(ctx context.Context, e *env, args []string) int {
	o, code, ok := parseAgentOptions(e, args)
	if !ok {
		return code
	}
	switch o.sub {
	case "run":
		return serveAgent(ctx, e, o.idle)
	case "start":
		return agentStartCommand(ctx, e)
	case "stop":
		return agentStopCommand(ctx, e)
	case "status":
		return agentStatusCommand(ctx, e)
	default:
		return e.usageError("agent", "unknown subcommand %q (start, stop, status or run)", clean(o.sub))
	}
}

// parseAgentOptions parses agent's subcommand (first, if any) and flags;
// ok is false with the exit code when the command ends there (--help, a
// usage error).
func parseAgentOptions(e *env, args []string) (o *agentOptions, code int, ok bool) {
	o = &agentOptions{sub: "start"}
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.DurationVar(&o.idle, "idle", defaultAgentIdle, "exit after this long without a request")
	fs.Usage = usageFunc(e, fs, agentHelp)
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		o.sub, args = args[0], args[1:]
	}
	if code, ok := parseFlags(e, fs, args); !ok {
		return nil, code, false
	}
	if o.idle <= 0 {
		return nil, e.usageError("agent", "--idle must be positive"), false
	}
	return o, exitOK, true
}

// agentStartCommand is `agent start`: it starts the agent in the
// background unless one answers.
func agentStartCommand(ctx context.Context, e *env) int {
	if res, err := agentCall(ctx, e.getenv, agentRequest{Op: "ping"}, 5*time.Second); err == nil {
		fmt.Fprintf(e.stderr, "The agent is already running (pid %d).\n", res.PID)
		return exitOK
	}
	if err := startAgent(ctx, e.getenv); err != nil {
		return e.fail(fmt.Errorf("agent: %w", err))
	}
	fmt.Fprintln(e.stderr, "The agent is running.")
	return exitOK
}

// agentStopCommand is `agent stop`.
func agentStopCommand(ctx context.Context, e *env) int {
	_, err := agentCall(ctx, e.getenv, agentRequest{Op: "stop"}, 5*time.Second)
	if errors.Is(err, errNoAgent) {
		fmt.Fprintln(e.stderr, "No agent is running.")
		return exitOK
	}
	if err != nil {
		return e.fail(err)
	}
	fmt.Fprintln(e.stderr, "The agent stopped; the access tokens it held are forgotten.")
	return exitOK
}

// agentStatusCommand is `agent status`: whether it runs and the profiles
// it holds an access token for.
func agentStatusCommand(ctx context.Context, e *env) int {
	res, err := agentCall(ctx, e.getenv, agentRequest{Op: "status"}, 5*time.Second)
	if errors.Is(err, errNoAgent) || errors.Is(err, errAgentUnsupported) {
		fmt.Fprintln(e.stdout, "agent: not running")
		return exitOK
	}
	if err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.stdout, "agent: running (pid %d, since %s)\n", res.PID, res.Started.Local().Format(time.RFC3339))
	for _, p := range res.Profiles {
		fmt.Fprintf(e.stdout, "  %s: access token valid until %s\n", p.Name, p.Expiry.Local().Format(time.RFC3339))
	}
	return exitOK
}

// agent is the running agent: one entry per profile and caller
// credential it served (agentcred.go).
type agent struct {
	env       *env
	configDir string
	started   time.Time
	lastUse   atomic.Int64
	stop      context.CancelFunc
	logger    *log.Logger

	mu sync.Mutex
	// entries is keyed by profile name and credential binding (entryKey).
	entries map[string]*agentEntry
	// secret keys the HMAC of callers' credentials (agentEntry.credential).
	secret []byte
}

// agentEntry is one profile's token source for one caller credential. The
// access token lives in the source's memory, nowhere else.
type agentEntry struct {
	name        string
	fingerprint string
	// credential binds the entry to the credentials that opened it: an
	// HMAC (under the agent's own random key) of the caller's passphrase
	// (file store) and client secret (credentialBinding).
	credential string
	src        *oauthclient.TokenSource
	lastUse    atomic.Int64 // UnixNano, for eviction (under agent.mu)
	mu         sync.Mutex
	expiry     time.Time // of the last token handed out, for status
}

// entryKey is an entry's key in agent.entries.
func entryKey(name, credential string) string { return name + "\x00" + credential }

// serveAgent is `agent run`: it takes the one agent's lock, listens on
// the socket and serves until stopped or idle.
func serveAgent(ctx context.Context, e *env, idle time.Duration) int {
	logger := log.New(e.stderr, "oauthsafe agent: ", log.LstdFlags)
	dir, err := agentDir(e.getenv)
	if err != nil {
		return e.fail(fmt.Errorf("agent: %w", err))
	}
	unlock, err := lockOneAgent(ctx, dir)
	if err != nil {
		if errors.Is(err, errAgentRunning) {
			return exitOK // another agent won the start race
		}
		return e.fail(fmt.Errorf("agent: %w", err))
	}
	defer unlock()
	cfgDir, err := profileDir()
	if err != nil {
		return e.fail(fmt.Errorf("agent: %w", err))
	}
	sock := agentSocket(dir)
	ln, sockInfo, err := listenAgent(sock)
	if err != nil {
		return e.fail(fmt.Errorf("agent: %w", err))
	}
	// Credentials come with each request, never from here (agentcred.go).
	forgetCredentialEnv()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	secret := make([]byte, 32)
	rand.Read(secret)
	a := &agent{env: e, configDir: cfgDir, started: time.Now(), stop: cancel, logger: logger, entries: map[string]*agentEntry{}, secret: secret}
	a.lastUse.Store(time.Now().UnixNano())
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	go a.watch(ctx, idle, sock, sockInfo)
	a.serve(ctx, ln)
	a.closeAll()
	return exitOK
}

// lockOneAgent takes the lock of the one agent per user: the file lock
// (the one the stores use, released by the OS however the agent exits),
// tried once; errAgentRunning when another agent holds it.
func lockOneAgent(ctx context.Context, dir string) (unlock func() error, err error) {
	tryCtx, tryCancel := context.WithCancelCause(ctx)
	tryCancel(errAgentRunning)
	return filelock.LockFile(tryCtx, filepath.Join(dir, "agent.lock"))
}

// listenAgent listens on the agent's socket (mode 0600), replacing a
// stale one of a dead agent (the caller holds the lock); it returns the
// socket's file info, to notice when it is removed or replaced.
func listenAgent(sock string) (*net.UnixListener, os.FileInfo, error) {
	_ = os.Remove(sock) // a stale socket of a dead agent (we hold the lock)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return nil, nil, err
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return nil, nil, err
	}
	sockInfo, err := os.Lstat(sock)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	return ln, sockInfo, nil
}

// serve accepts connections until the listener is closed, each served on
// its own goroutine, then stops the agent and waits for them.
func (a *agent) serve(ctx context.Context, ln *net.UnixListener) {
	var wg sync.WaitGroup
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.handle(ctx, conn)
		}()
	}
	a.stop()
	wg.Wait()
}

// closeAll closes every profile's source before the agent exits: refreshes
// in flight finish and rotations whose write failed are flushed (S29).
func (a *agent) closeAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, ent := range a.entries {
		if err := ent.src.Close(ctx); err != nil {
			a.logger.Printf("closing a profile's token source: %v", err)
		}
	}
}

// watch stops the agent after idle without a request, or when its socket
// was removed or replaced (its directory deleted, another agent started).
func (a *agent) watch(ctx context.Context, idle time.Duration, sock string, fi os.FileInfo) {
	tick := time.NewTicker(min(idle/4, 10*time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if time.Since(time.Unix(0, a.lastUse.Load())) > idle {
			a.logger.Printf("idle for %v: exiting", idle)
			a.stop()
			return
		}
		if now, err := os.Lstat(sock); err != nil || !os.SameFile(fi, now) {
			a.logger.Printf("socket %s is gone: exiting", sock)
			a.stop()
			return
		}
	}
}

// handle serves one connection: peer check, one request, one answer.
func (a *agent) handle(ctx context.Context, conn *net.UnixConn) {
	defer conn.Close()
	uid, err := peerUID(conn)
	if err != nil || uid != os.Getuid() {
		// Another user's process (or one we cannot identify): no answer.
		a.logger.Printf("refused a connection from uid %d", uid)
		return
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var req agentRequest
	dec := json.NewDecoder(io.LimitReader(conn, maxAgentMessage))
	if err := dec.Decode(&req); err != nil || req.V != 1 {
		a.reply(conn, &agentResponse{Code: "error", Error: "malformed request"})
		return
	}
	a.lastUse.Store(time.Now().UnixNano())
	var res *agentResponse
	switch req.Op {
	case "ping":
		res = &agentResponse{}
	case "token":
		res = a.token(ctx, conn, req)
	case "forget":
		a.forget(ctx, req.Profile)
		res = &agentResponse{}
	case "status":
		res = &agentResponse{Profiles: a.status()}
	case "stop":
		a.reply(conn, &agentResponse{PID: os.Getpid(), Started: a.started})
		a.logger.Printf("stop requested")
		a.stop()
		return
	default:
		res = &agentResponse{Code: "error", Error: "unknown request"}
	}
	res.PID, res.Started = os.Getpid(), a.started
	a.reply(conn, res)
}

func (a *agent) reply(conn *net.UnixConn, res *agentResponse) {
	res.V = 1
	b, err := json.Marshal(res)
	if err != nil || len(b) > maxAgentMessage {
		b, _ = json.Marshal(agentResponse{V: 1, Code: "error", Error: "answer too large"})
	}
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	conn.Write(b)
}

func (a *agent) status() []agentProfile {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []agentProfile
	now := time.Now()
	latest := map[string]time.Time{}
	for _, ent := range a.entries {
		ent.mu.Lock()
		exp := ent.expiry
		ent.mu.Unlock()
		if exp.After(now) && exp.After(latest[ent.name]) {
			latest[ent.name] = exp
		}
	}
	for name, exp := range latest {
		out = append(out, agentProfile{Name: name, Expiry: exp})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// token answers a valid access token for a profile, refreshing through the
// profile's token source (one refresh at a time, rotation persisted before
// the token is released).
func (a *agent) token(ctx context.Context, conn *net.UnixConn, req agentRequest) *agentResponse {
	if req.ConfigDir != a.configDir {
		return &agentResponse{Code: "unavailable", Error: "the agent reads profiles from another directory"}
	}
	if _, err := profilePath(req.Profile); err != nil {
		return &agentResponse{Code: "error", Error: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	p, err := loadProfile(req.Profile)
	if errors.Is(err, errNoLogin) {
		return &agentResponse{Code: "login_required", Error: describe(err)}
	}
	if err != nil {
		return &agentResponse{Code: "error", Error: err.Error()}
	}
	ent, err := a.entry(ctx, req.Profile, p, req.Passphrase, req.ClientSecret)
	if errors.Is(err, errNeedPassphrase) {
		return &agentResponse{Code: "unavailable", Error: err.Error()}
	}
	if err != nil {
		return &agentResponse{Code: "error", Error: describe(err), Hint: hintFor(err)}
	}
	tok, err := sourceToken(ctx, ent.src, req.Force, req.IDToken)
	if err != nil {
		if errors.Is(err, tokenstore.ErrLoginRequired) {
			a.mu.Lock()
			if k := entryKey(ent.name, ent.credential); a.entries[k] == ent {
				delete(a.entries, k)
			}
			a.mu.Unlock()
			return &agentResponse{Code: "login_required", Error: describe(err)}
		}
		var te *tokenstore.TemporaryError
		if errors.As(err, &te) {
			err = te.Err
		}
		a.logger.Printf("profile %s: %v", req.Profile, err)
		return &agentResponse{Code: "error", Error: describe(err), Hint: hintFor(err)}
	}
	ent.mu.Lock()
	ent.expiry = tok.Expiry
	ent.mu.Unlock()
	return &agentResponse{Token: tok}
}

// entry returns the profile's token source for the caller's credentials,
// building it when the profile is new or changed on disk (a new login,
// another account), or when no source was opened with these credentials.
// Sources are keyed by the profile and the caller's credentials (the file
// store's passphrase, the client secret): a caller is never served a
// source opened with another caller's, and a source is built with the
// caller's credentials only, never the agent's own environment's. For a
// file store, a passphrase that does not open the file is refused with the
// store's error and cached nowhere: a wrong passphrase neither gets tokens
// nor evicts the right one's source.
func (a *agent) entry(ctx context.Context, name string, p *profile, pass, clientSecret string) (*agentEntry, error) {
	fp, _ := json.Marshal(p)
	if p.storeKind() == storeFile {
		if pass == "" {
			return nil, errNeedPassphrase
		}
	} else {
		pass = "" // the keyring needs none: not part of the key
	}
	cred := credentialBinding(a.secret, pass, clientSecret)
	key := entryKey(name, cred)
	a.mu.Lock()
	defer a.mu.Unlock()
	old := a.entries[key]
	if old != nil && old.fingerprint == string(fp) {
		old.lastUse.Store(time.Now().UnixNano())
		return old, nil
	}
	ce := &env{stdout: a.env.stdout, stderr: a.env.stderr, cmd: a.env.cmd, getenv: callerEnv(a.env.getenv, pass, clientSecret)}
	// The caller resolved the client secret (from the profile's file or
	// its environment) and sent it: the agent reads no secret file.
	cp := *p
	cp.ClientSecretFile = ""
	if p.storeKind() == storeFile {
		st, err := openStore(ce, &cp, false)
		if err != nil {
			return nil, err
		}
		if _, err := engine.LoadRecord(ctx, st, p.storeKey(name)); err != nil && !errors.Is(err, tokenstore.ErrNotFound) {
			return nil, err // ErrWrongPassphrase: the same answer as without the agent
		}
	}
	src, err := profileSource(ctx, ce, name, &cp)
	if err != nil {
		return nil, err
	}
	if old != nil {
		go old.src.Close(context.WithoutCancel(ctx))
	}
	ent := &agentEntry{name: name, fingerprint: string(fp), credential: cred, src: src}
	ent.lastUse.Store(time.Now().UnixNano())
	a.entries[key] = ent
	a.evictLocked(ctx, name)
	return ent, nil
}

// evictLocked closes the least recently used sources of the profile beyond
// maxEntriesPerProfile. a.mu is held.
func (a *agent) evictLocked(ctx context.Context, name string) {
	for {
		var oldest string
		n := 0
		for k, ent := range a.entries {
			if ent.name != name {
				continue
			}
			n++
			if oldest == "" || ent.lastUse.Load() < a.entries[oldest].lastUse.Load() {
				oldest = k
			}
		}
		if n <= maxEntriesPerProfile {
			return
		}
		go a.entries[oldest].src.Close(context.WithoutCancel(ctx))
		delete(a.entries, oldest)
	}
}

// forget drops every source of the profile (after a login or logout, or
// git's erase): the next request builds a new one.
func (a *agent) forget(ctx context.Context, name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, ent := range a.entries {
		if ent.name == name {
			go ent.src.Close(context.WithoutCancel(ctx))
			delete(a.entries, k)
		}
	}
}

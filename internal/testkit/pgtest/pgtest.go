// Package pgtest runs a private PostgreSQL server for tests: initdb in a
// temporary directory, then the postgres server as a child of the test
// process on a private Unix socket (no TCP, no system service), stopped in
// t.Cleanup. It uses the binaries of Debian's postgresql package
// (/usr/lib/postgresql/*/bin) and imports no database driver: tests connect
// with the DSN it gives.
//
// As root, initdb and postgres refuse to run, so they run as the postgres
// user (or the user named by PGTEST_USER), and the directory is given to
// that user. Nothing here is safe for concurrent use.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ErrMissing means PostgreSQL's server binaries are not installed.
var ErrMissing = errors.New("pgtest: PostgreSQL server binaries not found (Debian package postgresql)")

// Server is a running private PostgreSQL server.
type Server struct {
	// Dir holds the data directory and the socket directory.
	Dir string
	// SocketDir is where the server listens (the DSN's host).
	SocketDir string
	// Port names the socket (.s.PGSQL.<Port>).
	Port int

	bin  string
	cred *syscall.Credential
	cmd  *exec.Cmd
	done chan struct{}
}

// New starts a Server for the test and stops it in t.Cleanup. It skips the
// test when PostgreSQL is not installed, and fails it instead when the
// environment variable CI is set.
func New(t testing.TB) *Server {
	t.Helper()
	s, err := Start()
	if errors.Is(err, ErrMissing) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(dirs)
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", ErrMissing
}

// Start runs initdb and starts the server. Call Close when done.
func Start() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, SocketDir: filepath.Join(dir, "sock"), Port: 5432 + os.Getpid()%10000, bin: bin}
	if os.Getuid() == 0 {
		name := os.Getenv("PGTEST_USER")
		if name == "" {
			name = "postgres"
		}
		u, err := user.Lookup(name)
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: running as root needs an unprivileged user %q: %w", name, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		os.Chown(dir, uid, gid)
	}
	if err := os.Mkdir(s.SocketDir, 0o700); err != nil {
		s.Close()
		return nil, err
	}
	if s.cred != nil {
		os.Chown(s.SocketDir, int(s.cred.Uid), int(s.cred.Gid))
	}
	if out, err := s.run("initdb", "-D", s.dataDir(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		s.Close()
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	if err := s.Restart(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) dataDir() string { return filepath.Join(s.Dir, "data") }

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGKILL}
	return cmd
}

func (s *Server) run(name string, args ...string) ([]byte, error) {
	return s.command(name, args...).CombinedOutput()
}

// DSN returns a keyword/value connection string for database db, as the
// postgres superuser over the Unix socket.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", s.SocketDir, s.Port, db)
}

// CreateDB creates database name.
func (s *Server) CreateDB(name string) error {
	out, err := s.run("createdb", "-h", s.SocketDir, "-p", strconv.Itoa(s.Port), "-U", "postgres", name)
	if err != nil {
		return fmt.Errorf("pgtest: createdb: %w\n%s", err, out)
	}
	return nil
}

// Dump returns pg_dump's plain-text dump of database db.
func (s *Server) Dump(db string) ([]byte, error) {
	cmd := s.command("pg_dump", "-h", s.SocketDir, "-p", strconv.Itoa(s.Port), "-U", "postgres", db)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("pgtest: pg_dump: %w\n%s", err, stderr.Bytes())
	}
	return out, nil
}

// Restart starts the server if it is stopped and waits until it accepts
// connections.
func (s *Server) Restart() error {
	if s.cmd != nil {
		return nil
	}
	logf, err := os.Create(filepath.Join(s.Dir, "server.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := s.command("postgres", "-D", s.dataDir(), "-k", s.SocketDir, "-p", strconv.Itoa(s.Port),
		"-c", "listen_addresses=", "-c", "fsync=off", "-c", "max_connections=200")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: postgres: %w", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			s.cmd = nil
			return fmt.Errorf("pgtest: postgres exited: %s", s.Log())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := exec.CommandContext(ctx, filepath.Join(s.bin, "pg_isready"), "-q", "-h", s.SocketDir,
			"-p", strconv.Itoa(s.Port), "-U", "postgres").Run()
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("pgtest: postgres did not become ready in 30 s")
}

// Stop stops the server: immediate=false is a fast shutdown (SIGINT: open
// sessions are ended, transactions rolled back), true an immediate one
// (SIGQUIT, like a crash). It waits for the server to exit.
func (s *Server) Stop(immediate bool) {
	if s.cmd == nil {
		return
	}
	sig := syscall.SIGINT
	if immediate {
		sig = syscall.SIGQUIT
	}
	s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Log returns what the server printed since its last start.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
	return strings.TrimSpace(string(b))
}

// Close stops the server and removes its directory.
func (s *Server) Close() {
	s.Stop(false)
	os.RemoveAll(s.Dir)
}

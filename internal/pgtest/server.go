//go:build linux

package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is a throwaway PostgreSQL server: a cluster made by initdb in a
// temporary directory, listening on 127.0.0.1 only, trusting every local
// connection (user postgres, no password).
type Server struct {
	bin  string // directory of initdb and postgres
	dir  string // temporary directory; the cluster is dir/data
	port int
	cred *syscall.Credential // nil unless running as root

	mu     sync.Mutex
	cmd    *exec.Cmd  // the running postmaster, nil when stopped
	exited chan error // receives cmd.Wait's result
	log    *bytes.Buffer
}

// NewServer starts a throwaway server for this test alone, stopped and
// removed when the test ends. Tests that stop and restart the server use
// it; others use URL. Without PostgreSQL binaries it skips (or fails, when
// SIGNIN_REQUIRE_POSTGRES=1).
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	s, err := startServer()
	if err != nil {
		skipOrFail(tb, "cannot start a throwaway PostgreSQL server: %v", err)
	}
	tb.Cleanup(s.close)
	return s
}

// URL returns the URL of database db on s.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// NewDatabase creates an empty database on s for this test and returns its
// URL.
func (s *Server) NewDatabase(tb testing.TB) string {
	tb.Helper()
	return createDatabase(tb, s.URL("postgres"))
}

// startServer makes a cluster and starts it.
func startServer() (*Server, error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin}
	if os.Geteuid() == 0 {
		if s.cred, err = unprivileged(); err != nil {
			return nil, err
		}
	}
	if s.dir, err = os.MkdirTemp("", "signin-pgtest-"); err != nil {
		return nil, err
	}
	if s.cred != nil {
		if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			s.close()
			return nil, err
		}
	}
	initdb := s.command(filepath.Join(bin, "initdb"), "-D", s.data(), "-U", "postgres",
		"--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		s.close()
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	if s.port, err = freePort(); err != nil {
		s.close()
		return nil, err
	}
	if err := s.Start(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// Start starts the server (again, after Stop) on the same port and waits
// until it accepts connections.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("pgtest: server already running")
	}
	cmd := s.command(filepath.Join(s.bin, "postgres"), "-D", s.data(),
		"-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+s.dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300")
	s.log = new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	// If the test binary dies without stopping the server, so does the server.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ready := make(chan error, 1)
	go func() { ready <- WaitReady(context.Background(), s.URL("postgres"), 60*time.Second) }()
	select {
	case err := <-ready:
		if err != nil {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("postgres did not accept connections: %v\n%s", err, s.log)
		}
	case err := <-exited:
		return fmt.Errorf("postgres exited at start: %v\n%s", err, s.log)
	}
	s.cmd, s.exited = cmd, exited
	return nil
}

// Stop stops the server with a fast shutdown: open connections are closed
// (in-flight statements fail with "terminating connection due to
// administrator command"), as when an operator restarts PostgreSQL.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	s.cmd.Process.Signal(syscall.SIGINT)
	s.signalAll(syscall.SIGCONT) // a frozen server must wake to stop
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
	return nil
}

// Freeze stops every process of the server (the postmaster and each
// connection's backend) with SIGSTOP: what a hung host, or a network that
// drops packets, looks like to a client. Connections stay open and
// connects are accepted by the kernel, but nothing answers until Thaw.
func (s *Server) Freeze() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return errors.New("pgtest: server not running")
	}
	return s.signalAll(syscall.SIGSTOP)
}

// Thaw resumes a frozen server (SIGCONT).
func (s *Server) Thaw() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return errors.New("pgtest: server not running")
	}
	return s.signalAll(syscall.SIGCONT)
}

// signalAll signals the postmaster, then each of its children (every
// backend makes itself a session leader, so a process group would miss
// them). Stopped first, the postmaster forks no new child meanwhile.
// s.mu is held.
func (s *Server) signalAll(sig syscall.Signal) error {
	pid := s.cmd.Process.Pid
	if err := syscall.Kill(pid, sig); err != nil {
		return err
	}
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return err
	}
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(pid) {
			continue
		}
		child, err := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		if err == nil {
			syscall.Kill(child, sig)
		}
	}
	return nil
}

// close stops the server and removes its directory.
func (s *Server) close() {
	s.Stop()
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

// command runs name as the unprivileged user when we are root.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

// findBinaries returns the directory holding initdb and postgres: PATH
// first, then Debian's /usr/lib/postgresql/<version>/bin, newest version.
func findBinaries() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	return "", errors.New("no PostgreSQL binaries (initdb, postgres) on PATH or in /usr/lib/postgresql/*/bin")
}

// unprivileged returns the credentials of a user that initdb accepts:
// postgres (Debian's package makes it), else nobody.
func unprivileged() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root and no unprivileged user (postgres, nobody) to run initdb as")
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// state is what a cluster remembers between starts: its ports, its tokens and
// the PIDs of the children it started (so a later start can stop children
// left behind by a `kill -9`).
type state struct {
	APIServerPort int               `json:"apiServerPort"`
	EtcdPort      int               `json:"etcdPort"`
	EtcdPeerPort  int               `json:"etcdPeerPort"`
	Tokens        map[string]string `json:"tokens"`
	Children      map[string]int    `json:"children,omitempty"`
}

func (c *Cluster) statePath() string { return filepath.Join(c.cfg.StateDir, "state.json") }

func (c *Cluster) loadState() (*state, error) {
	s := &state{}
	data, err := os.ReadFile(c.statePath())
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("cannot read cluster state: %w", err)
	default:
		if err := json.Unmarshal(data, s); err != nil {
			return nil, fmt.Errorf("cannot parse cluster state %s: %w", c.statePath(), err)
		}
	}
	if s.Tokens == nil {
		s.Tokens = map[string]string{}
	}
	for _, u := range tokenUsers {
		if s.Tokens[u.name] == "" {
			s.Tokens[u.name] = randomToken()
		}
	}
	return s, nil
}

func (c *Cluster) saveState() error {
	data, err := json.MarshalIndent(c.state, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode cluster state: %w", err)
	}
	tmp := c.statePath() + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("cannot write cluster state: %w", err)
	}
	return os.Rename(tmp, c.statePath())
}

// choosePorts keeps the ports of an earlier start while they are free and
// picks new free ones otherwise. An explicitly requested API server port must
// be free.
func (c *Cluster) choosePorts() error {
	if c.cfg.Port != 0 {
		if !portFree(c.cfg.Port) {
			return fmt.Errorf("port %d is already in use: choose another with --port", c.cfg.Port)
		}
		c.state.APIServerPort = c.cfg.Port
	}
	taken := map[int]bool{}
	for _, p := range []*int{&c.state.APIServerPort, &c.state.EtcdPort, &c.state.EtcdPeerPort} {
		if *p == 0 || taken[*p] || !portFree(*p) {
			port, err := freePort(taken)
			if err != nil {
				return err
			}
			*p = port
		}
		taken[*p] = true
	}
	return nil
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

func freePort(taken map[int]bool) (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("cannot find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !taken[port] {
			return port, nil
		}
	}
	return 0, errors.New("cannot find a free port")
}

func randomToken() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return hex.EncodeToString(b)
}

// lock is an exclusive flock on <state-dir>/lock holding the owner's PID. The
// kernel drops the lock when its owner dies, so a lock left by a crash is
// recovered without asking.
type lock struct {
	f *os.File
}

// ErrInUse is returned when another live process holds the state directory.
var ErrInUse = errors.New("state directory in use")

func acquireLock(dir string) (*lock, error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		pid, _ := LockHolder(dir)
		return nil, fmt.Errorf("%w: %s is used by a running strata up (pid %d); stop it with `strata down --state-dir %s`",
			ErrInUse, dir, pid, dir)
	}
	if err := f.Truncate(0); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("cannot write lock file: %w", err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("cannot write lock file: %w", err)
	}
	return &lock{f: f}, nil
}

func (l *lock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Truncate(0)
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
}

// LockHolder returns the PID of the live process holding the state directory,
// or 0 when nobody holds it.
func LockHolder(dir string) (int, error) {
	path := filepath.Join(dir, "lock")
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cannot open lock file: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return 0, nil // nobody holds it
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("cannot read lock file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("lock file %s holds no PID", path)
	}
	return pid, nil
}

package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// process is one child of the cluster: a binary, its arguments, its log file.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error
}

func (c *Cluster) binary(name string) (string, error) {
	path := filepath.Join(c.cfg.BinDir, name)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%s not found in %s: run `make tools` to build the local cluster binaries", name, c.cfg.BinDir)
	}
	return path, nil
}

// start launches a child in its own process group (so a Ctrl-C in the
// terminal reaches only strata, which then stops children in order) that the
// kernel terminates if strata dies.
func (c *Cluster) start(name string, args ...string) (*process, error) {
	bin, err := c.binary(name)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(c.cfg.StateDir, "logs", name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open log file for %s: %w", name, err)
	}
	fmt.Fprintf(f, "\n==== %s starting %s\n", time.Now().Format(time.RFC3339), strings.Join(append([]string{bin}, args...), " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.Dir = c.cfg.StateDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("cannot start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: f, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	c.state.Children[name] = cmd.Process.Pid
	if err := c.saveState(); err != nil {
		return nil, err
	}
	return p, nil
}

// stop asks the child to terminate and kills it if it has not after the grace
// period.
func (p *process) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports the error of a child that has exited, or nil while it runs.
func (p *process) exited() error {
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s exited: %w (see %s)", p.name, p.err, p.log.Name())
		}
		return fmt.Errorf("%s exited (see %s)", p.name, p.log.Name())
	default:
		return nil
	}
}

// reapStale stops children recorded by an earlier start whose owner died
// without stopping them (kill -9). A PID is only signalled when its command
// line still names this state directory, so a reused PID is left alone.
func (c *Cluster) reapStale(ctx context.Context) {
	for name, pid := range c.state.Children {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.Contains(string(cmdline), c.cfg.StateDir) {
			continue
		}
		c.progress("stopping %s (pid %d) left behind by an earlier run", name, pid)
		_ = syscall.Kill(pid, syscall.SIGTERM)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	c.state.Children = map[string]int{}
}

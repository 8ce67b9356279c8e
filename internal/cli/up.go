package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-dev/strata/internal/cluster"
	"github.com/strata-dev/strata/internal/install"
	"github.com/strata-dev/strata/internal/manager"
)

// readyFile marks a state directory whose `strata up` has finished starting.
const readyFile = "ready"

type upOptions struct {
	stateDir  string
	binDir    string
	port      int
	detach    bool
	verbosity int
	profiling bool
	manager   manager.Options
	sync      string
}

func newUpCommand() *cobra.Command {
	o := upOptions{manager: manager.DefaultOptions()}
	// The local cluster's servers, and the receivers, stores and metric
	// servers a developer runs beside it, are on this machine's loopback.
	o.manager.EgressDeniedNetworks = []string{"link-local", "metadata"}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run a local Kubernetes cluster with Strata in it",
		Long: `Start etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok
(one simulated node) from the binaries built by 'make tools', install Strata's
CRDs and run the Strata manager in this process. State lives in --state-dir;
running 'strata up' again resumes with every object intact. Ctrl-C stops it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.detach {
				return runDetached(cmd, o)
			}
			return runUp(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.stateDir, "state-dir", ".strata", "directory for the cluster's data, certificates, logs and kubeconfig")
	f.StringVar(&o.binDir, "bin-dir", defaultBinDir(), "directory of the binaries built by 'make tools'")
	f.IntVar(&o.port, "port", 0, "API server port (default: the last one used, or a free one)")
	f.BoolVar(&o.detach, "detach", false, "run in the background; stop with 'strata down'")
	f.IntVarP(&o.verbosity, "verbosity", "v", 0, "manager log verbosity")
	f.BoolVar(&o.profiling, "apiserver-profiling", false, "serve the API server's /debug/pprof endpoints (admin only), to see where its CPU goes under load")
	f.StringVar(&o.sync, "sync", "", "create a GitRepository and a Sync for PATH_OR_URL[#path] (see docs/delivery.md)")
	addSharedManagerFlags(cmd, &o.manager)
	return cmd
}

func runUp(parent context.Context, out io.Writer, o upOptions) error {
	began := time.Now()
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The manager runs in this process: its memory limit is the process's.
	memLimit, err := manager.SetMemoryLimit(o.manager.MemoryLimit)
	if err != nil {
		return err
	}
	stateDir, err := filepath.Abs(o.stateDir)
	if err != nil {
		return fmt.Errorf("cannot resolve state directory: %w", err)
	}
	_ = os.Remove(filepath.Join(stateDir, readyFile))
	c, err := cluster.Start(ctx, cluster.Config{
		StateDir: stateDir,
		BinDir:   o.binDir,
		Port:     o.port,
		Progress: prefixWriter{w: out},

		APIServerProfiling: o.profiling,
	})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "strata: stopping the local cluster")
		c.Stop()
		_ = os.Remove(filepath.Join(stateDir, readyFile))
		fmt.Fprintln(out, "strata: stopped")
	}()

	n, err := install.CRDs(ctx, c.RESTConfig)
	if err != nil {
		return err
	}
	if err := install.ApprovalGate(ctx, c.RESTConfig); err != nil {
		return err
	}
	fmt.Fprintf(out, "strata: installed %d CRDs\n", n)
	switch n, found, err := install.GatewayAPICRDs(ctx, c.RESTConfig, o.binDir); {
	case err != nil:
		return err
	case found:
		fmt.Fprintf(out, "strata: installed %d Gateway API CRDs\n", n)
	default:
		fmt.Fprintf(out, "strata: no Gateway API CRDs in %s (run `make tools`); HTTPRoutes are not available\n", o.binDir)
	}

	logFile, err := os.OpenFile(filepath.Join(stateDir, "logs", "manager.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("cannot open manager log: %w", err)
	}
	defer logFile.Close()
	mo := o.manager
	mo.MetricsAddr, mo.ProbeAddr, mo.LeaderElection, mo.StateDir = "0", "0", false, stateDir
	if mo.AllowFileURLs, err = upSyncFileRoots(o.sync, mo.AllowFileURLs); err != nil {
		return err
	}
	mgrLog := newLogger(logFile, o.verbosity)
	mgrLog.Info("set the Go runtime's memory limit", memLimit.LogValues()...)
	mgr, err := manager.New(c.RESTConfig, mo, mgrLog)
	if err != nil {
		return err
	}
	mgrCtx, stopMgr := context.WithCancel(ctx)
	mgrErr := make(chan error, 1)
	go func() { mgrErr <- mgr.Start(mgrCtx) }()
	defer func() {
		stopMgr()
		<-mgrErr
	}()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return errors.New("manager caches did not sync")
	}
	fmt.Fprintf(out, "strata: manager running (logs: %s)\n", logFile.Name())
	if o.sync != "" {
		msg, err := applyUpSync(ctx, c.RESTConfig, o.sync)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "strata: %s\n", msg)
	}

	if err := os.WriteFile(filepath.Join(stateDir, readyFile), nil, 0o600); err != nil {
		return fmt.Errorf("cannot write ready marker: %w", err)
	}
	kubeconfig := c.KubeconfigPath()
	fmt.Fprintf(out, "strata: ready in %.1fs\n\n", time.Since(began).Seconds())
	fmt.Fprintf(out, "  export KUBECONFIG=%s\n  kubectl get nodes\n\nPress Ctrl-C to stop; 'strata up' again resumes with everything intact.\n", kubeconfig)

	select {
	case <-ctx.Done():
		return nil
	case <-c.Done():
		return fmt.Errorf("the local cluster failed: %w", c.Err())
	case err := <-mgrErr:
		mgrErr <- err // let the deferred wait return
		if err != nil {
			return fmt.Errorf("manager stopped: %w", err)
		}
		return errors.New("manager stopped")
	}
}

// runDetached starts `strata up` again as a background process with its
// output in the state directory, and returns once it is ready.
func runDetached(cmd *cobra.Command, o upOptions) error {
	out := cmd.OutOrStdout()
	stateDir, err := filepath.Abs(o.stateDir)
	if err != nil {
		return fmt.Errorf("cannot resolve state directory: %w", err)
	}
	if pid, _ := cluster.LockHolder(stateDir); pid != 0 {
		return fmt.Errorf("%s is used by a running strata up (pid %d); stop it with `strata down --state-dir %s`", stateDir, pid, stateDir)
	}
	if err := os.MkdirAll(filepath.Join(stateDir, "logs"), 0o700); err != nil {
		return fmt.Errorf("cannot create state directory: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find the strata executable: %w", err)
	}
	var args []string
	for _, a := range os.Args[1:] {
		if a != "--detach" && a != "--detach=true" {
			args = append(args, a)
		}
	}
	logPath := filepath.Join(stateDir, "logs", "strata-up.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("cannot open %s: %w", logPath, err)
	}
	defer logFile.Close()
	_ = os.Remove(filepath.Join(stateDir, readyFile))
	child := exec.Command(exe, args...)
	child.Stdout, child.Stderr = logFile, logFile
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := child.Start(); err != nil {
		return fmt.Errorf("cannot start strata up in the background: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			data, _ := os.ReadFile(logPath)
			return fmt.Errorf("strata up failed in the background: %s", strings.TrimSpace(lastLine(string(data))))
		case <-tick.C:
			if _, err := os.Stat(filepath.Join(stateDir, readyFile)); err == nil {
				fmt.Fprintf(out, "strata: running in the background (pid %d, log %s)\n", child.Process.Pid, logPath)
				fmt.Fprintf(out, "  export KUBECONFIG=%s\n  strata down --state-dir %s\n", cluster.KubeconfigPath(stateDir), o.stateDir)
				return nil
			}
		}
	}
}

func newDownCommand() *cobra.Command {
	var stateDir string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop a running 'strata up'",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := filepath.Abs(stateDir)
			if err != nil {
				return fmt.Errorf("cannot resolve state directory: %w", err)
			}
			pid, err := cluster.LockHolder(dir)
			if err != nil {
				return err
			}
			if pid == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "strata: nothing is running in %s\n", dir)
				return nil
			}
			if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
				return fmt.Errorf("cannot signal strata up (pid %d): %w", pid, err)
			}
			deadline := time.Now().Add(timeout)
			for time.Now().Before(deadline) {
				if p, _ := cluster.LockHolder(dir); p == 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "strata: stopped (pid %d)\n", pid)
					return nil
				}
				time.Sleep(100 * time.Millisecond)
			}
			return fmt.Errorf("strata up (pid %d) did not stop within %s", pid, timeout)
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", ".strata", "state directory of the 'strata up' to stop")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait for it to stop")
	return cmd
}

// prefixWriter prefixes each progress line with "strata: ".
type prefixWriter struct{ w io.Writer }

func (p prefixWriter) Write(b []byte) (int, error) {
	if _, err := fmt.Fprintf(p.w, "strata: %s", b); err != nil {
		return 0, err
	}
	return len(b), nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		return s[i+1:]
	}
	return s
}

package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/strata-dev/strata/internal/cluster"
	"github.com/strata-dev/strata/internal/install"
	"github.com/strata-dev/strata/internal/scheme"
)

// RepoRoot is the repository's top folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// BinDir is where `make tools` puts the binaries: $KUBEBUILDER_ASSETS, or
// bin/ at the repository root.
func BinDir() string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(), "bin")
}

// Env is a running API server with Strata's CRDs.
type Env struct {
	Config *rest.Config
	Client client.Client
	stop   func()
}

// Stop tears the API server down.
func (e *Env) Stop() { e.stop() }

// Start runs etcd and kube-apiserver through envtest and installs Strata's
// CRDs. Call it once from TestMain.
func Start() (*Env, error) {
	bin := BinDir()
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return nil, fmt.Errorf("%s not found in %s: run `make tools` (or set KUBEBUILDER_ASSETS)", b, bin)
		}
	}
	te := &envtest.Environment{BinaryAssetsDirectory: bin}
	cfg, err := te.Start()
	if err != nil {
		return nil, fmt.Errorf("cannot start envtest API server: %w", err)
	}
	reap, err := reapChildren("etcd", "kube-apiserver")
	if err != nil {
		_ = te.Stop()
		return nil, err
	}
	env := &Env{Config: cfg, stop: func() { reap.Stop(); _ = te.Stop() }}
	if err := env.finish(); err != nil {
		env.Stop()
		return nil, err
	}
	return env, nil
}

// StartCluster runs a whole local cluster (with kube-controller-manager, the
// scheduler and a kwok node) in a temporary state directory and installs
// Strata's CRDs. Use it when a test depends on garbage collection or pods.
func StartCluster() (*Env, error) {
	dir, err := os.MkdirTemp("", "strata-testcluster-")
	if err != nil {
		return nil, fmt.Errorf("cannot create state directory: %w", err)
	}
	c, err := cluster.Start(context.Background(), cluster.Config{StateDir: dir, BinDir: BinDir(), StartTimeout: 2 * time.Minute})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	env := &Env{Config: c.RESTConfig, stop: func() { c.Stop(); _ = os.RemoveAll(dir) }}
	if err := env.finish(); err != nil {
		env.Stop()
		return nil, err
	}
	return env, nil
}

func (e *Env) finish() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := install.CRDs(ctx, e.Config); err != nil {
		return err
	}
	// The promotion approval gate (admission policies, approver roles), as
	// `strata install` applies it.
	if err := install.ApprovalGate(ctx, e.Config); err != nil {
		return err
	}
	c, err := client.New(e.Config, client.Options{Scheme: scheme.New()})
	if err != nil {
		return fmt.Errorf("cannot build client: %w", err)
	}
	e.Client = c
	return nil
}

// Main is a TestMain body: it starts an envtest API server, stores it in
// *env, runs the tests and stops it. A failure to start is fatal and says why.
func Main(m interface{ Run() int }, env **Env, start func() (*Env, error)) int {
	e, err := start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot start the test API server: %v\n", err)
		return 1
	}
	*env = e
	defer e.Stop()
	return m.Run()
}

// InstallGatewayAPI applies the Gateway API CRDs that `make tools` copies
// into the tools folder (HTTPRoute and the rest), for tests of traffic
// routing. A missing file fails with the command to run.
func InstallGatewayAPI(cfg *rest.Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, found, err := install.GatewayAPICRDs(ctx, cfg, BinDir())
	if err == nil && !found {
		err = fmt.Errorf("%s not found in %s: run `make tools`", install.GatewayAPICRDsFile, BinDir())
	}
	return err
}

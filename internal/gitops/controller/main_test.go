package controller

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/scheme"
	"github.com/strata-dev/strata/internal/testenv"
)

var env *testenv.Env

// stateDir is the main test manager's state folder (its artifact store is
// stateDir/gitops).
var stateDir string

// outsideFileRoot is a folder outside the one the test manager lets file://
// URLs read: every t.TempDir() is inside that one (TMPDIR points there), so
// repositories made here are what a tenant must not reach.
var outsideFileRoot string

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, &env, startWithManager))
}

// Namespaces served by a second manager that runs with the multi-tenant
// lockdown (--default-service-account, --no-cross-namespace-refs); the main
// manager leaves them alone.
const (
	lockedNamespace = "locked-tenant"
	lockedOther     = "locked-other"
	lockedAccount   = "strata-tenant"
)

// startWithManager starts the API server and a manager running only the
// delivery controllers, with a short health poll so tests stay fast, and a
// locked-down manager for lockedNamespace and lockedOther. The managers run
// until the test binary exits.
func startWithManager() (*testenv.Env, error) {
	ctrl.SetLogger(logr.Discard())
	e, err := testenv.Start()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "gitops-controller-test-")
	if err != nil {
		e.Stop()
		return nil, err
	}
	stateDir = dir
	outsideFileRoot = os.TempDir()
	fileRoot, err := os.MkdirTemp("", "gitops-file-root-")
	if err != nil {
		e.Stop()
		return nil, err
	}
	if err := os.Setenv("TMPDIR", fileRoot); err != nil {
		e.Stop()
		return nil, err
	}
	notLocked := fields.AndSelectors(
		fields.OneTermNotEqualSelector("metadata.namespace", lockedNamespace),
		fields.OneTermNotEqualSelector("metadata.namespace", lockedOther))
	mine := cache.Options{ByObject: map[client.Object]cache.ByObject{&gitopsv1.Sync{}: {Field: notLocked}, &gitopsv1.GitRepository{}: {Field: notLocked}}}
	if err := startManager(e, ctrl.Options{Cache: mine},
		Options{StateDir: dir, Workers: 4, HealthPollInterval: 300 * time.Millisecond, AllowFileURLs: []string{fileRoot}}); err != nil {
		e.Stop()
		return nil, err
	}
	locked := ctrl.Options{
		Cache:      cache.Options{DefaultNamespaces: map[string]cache.Config{lockedNamespace: {}, lockedOther: {}}},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	}
	if err := startManager(e, locked, Options{StateDir: filepath.Join(dir, "locked"), Workers: 2, HealthPollInterval: 300 * time.Millisecond,
		DefaultServiceAccount: lockedAccount, NoCrossNamespaceRefs: true, AllowFileURLs: []string{fileRoot}}); err != nil {
		e.Stop()
		return nil, err
	}
	return e, nil
}

func startManager(e *testenv.Env, mo ctrl.Options, o Options) error {
	mo.Scheme = scheme.New()
	mo.Metrics = metricsserver.Options{BindAddress: "0"}
	mo.HealthProbeBindAddress = "0"
	mgr, err := ctrl.NewManager(e.Config, mo)
	if err != nil {
		return err
	}
	if err := Setup(mgr, o); err != nil {
		return err
	}
	go func() {
		if err := mgr.Start(context.Background()); err != nil {
			fmt.Fprintf(os.Stderr, "manager stopped: %v\n", err)
		}
	}()
	return nil
}

// eventually polls cond every 100ms until it returns true or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not true within %s; last: %s", what, timeout, last)
}

func readyOf(o conditions.Setter) (metav1.ConditionStatus, string, string) {
	c := conditions.Get(o, conditions.Ready)
	if c == nil {
		return "", "", ""
	}
	return c.Status, c.Reason, c.Message
}

var nsCounter atomic.Int64

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := fmt.Sprintf("t%d-%d", time.Now().Unix()%100000, nsCounter.Add(1))
	if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	return ns
}

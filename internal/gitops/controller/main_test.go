package controller

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/scheme"
	"github.com/strata-dev/strata/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, &env, startWithManager))
}

// startWithManager starts the API server and a manager running only the
// delivery controllers, with a short health poll so tests stay fast. The
// manager runs until the test binary exits.
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
	mgr, err := ctrl.NewManager(e.Config, ctrl.Options{
		Scheme:                 scheme.New(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		e.Stop()
		return nil, err
	}
	if err := Setup(mgr, Options{StateDir: dir, Workers: 4, HealthPollInterval: 300 * time.Millisecond}); err != nil {
		e.Stop()
		return nil, err
	}
	go func() {
		if err := mgr.Start(context.Background()); err != nil {
			fmt.Fprintf(os.Stderr, "manager stopped: %v\n", err)
		}
	}()
	return e, nil
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

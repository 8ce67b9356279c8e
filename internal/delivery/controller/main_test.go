package controller

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/testenv"
	"github.com/strata-dev/strata/internal/testenv/managedtest"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, &env, testenv.Start))
}

// startManager runs the analysis controller against the test API server
// until the test ends.
func startManager(t *testing.T) {
	t.Helper()
	startManagerWith(t, Options{Workers: 4})
}

// startManagerWith is startManager with o.
func startManagerWith(t *testing.T, o Options) {
	t.Helper()
	managedtest.StartManager(t, env.Config, func(mgr ctrl.Manager) error {
		return Setup(mgr, o)
	})
}

func namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "analysis-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// waitDone waits for the run's verdict and returns the run.
func waitDone(t *testing.T, run *deliveryv1.AnalysisRun) *deliveryv1.AnalysisRun {
	t.Helper()
	managedtest.Eventually(t, 60*time.Second, "run "+run.Name+" completed", func() error {
		if err := env.Client.Get(context.Background(), keyOf(run), run); err != nil {
			return err
		}
		if !run.Status.Completed() {
			return errorf("phase %q: %s", run.Status.Phase, run.Status.Message)
		}
		return nil
	})
	return run
}

package nop_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/managed"
	"github.com/strata-dev/strata/internal/scheme"
	"github.com/strata-dev/strata/internal/testenv"
	"github.com/strata-dev/strata/internal/testenv/writecount"
	"github.com/strata-dev/strata/providers/nop"
	nopv1 "github.com/strata-dev/strata/providers/nop/apis/nop/v1alpha1"
)

var env *testenv.Env

// The package runs its own API server, so that only the writes of this
// test's NopResources are counted.
func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, &env, start))
}

func start() (*testenv.Env, error) {
	e, err := testenv.Start()
	if err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(e.Config, ctrl.Options{
		Scheme:                 scheme.New(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err == nil {
		err = nop.Setup(mgr, managed.Options{})
	}
	if err != nil {
		e.Stop()
		return nil, err
	}
	go func() {
		if err := mgr.Start(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "manager stopped:", err)
		}
	}()
	return e, nil
}

// Writes per NopResource, beyond the user's own request, that the managed
// runtime may make.
// Create: the create intent with the finalizer and external name before the
// external call (1), its success after it (1), the status (1) and one event
// (1). Issue 15 asks for 3: the success record is the one that could move
// (into the status written at the end of the same reconcile), which changes
// what the crash-safety annotations promise; see the issue.
// Delete: the finalizer (1) and one event (1).
const (
	maxCreateWrites = 4
	maxDeleteWrites = 2
)

// TestWritesPerResource creates and deletes n NopResources and counts the
// API server's write requests.
func TestWritesPerResource(t *testing.T) {
	ctx := context.Background()
	c := env.Client
	const n = 20
	// A first resource makes sure the informers run; it is not counted.
	if err := c.Create(ctx, &nopv1.NopResource{ObjectMeta: metav1.ObjectMeta{Name: "warm-up"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "warm-up Ready", func() error { return ready(ctx, c, "warm-up", 1) })
	if err := c.Delete(ctx, &nopv1.NopResource{ObjectMeta: metav1.ObjectMeta{Name: "warm-up"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "warm-up gone", func() error { return ready(ctx, c, "", 0) })

	before := writecount.Settle(t, env.Config)
	for i := range n {
		if err := c.Create(ctx, &nopv1.NopResource{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("w-%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Minute, "NopResources Ready", func() error { return ready(ctx, c, "w-", n) })
	after := writecount.Settle(t, env.Config)
	writecount.Check(t, "create", "NopResource", before, after, n, maxCreateWrites)

	before = after
	for i := range n {
		if err := c.Delete(ctx, &nopv1.NopResource{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("w-%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Minute, "NopResources gone", func() error { return ready(ctx, c, "", 0) })
	after = writecount.Settle(t, env.Config)
	writecount.Check(t, "delete", "NopResource", before, after, n, maxDeleteWrites)
}

// ready says whether want NopResources named with prefix are Ready; with an
// empty prefix, whether there are want NopResources at all.
func ready(ctx context.Context, c client.Client, prefix string, want int) error {
	l := &nopv1.NopResourceList{}
	if err := c.List(ctx, l); err != nil {
		return err
	}
	got := 0
	for i := range l.Items {
		if prefix == "" {
			got++
		} else if strings.HasPrefix(l.Items[i].Name, prefix) && conditions.IsTrue(&l.Items[i], conditions.Ready) {
			got++
		}
	}
	if got != want {
		return fmt.Errorf("%d, want %d", got, want)
	}
	return nil
}

func eventually(t *testing.T, d time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = fn(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %v", what, d, err)
}

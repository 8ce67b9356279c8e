package verify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	deliverycontroller "github.com/strata-dev/strata/internal/delivery/controller"
	gitopscontroller "github.com/strata-dev/strata/internal/gitops/controller"
	"github.com/strata-dev/strata/internal/gitops/gittest"
	"github.com/strata-dev/strata/internal/testenv"
	"github.com/strata-dev/strata/internal/testenv/managedtest"
	"github.com/strata-dev/strata/internal/testenv/promtest"
)

var (
	env      *testenv.Env
	fileRoot string
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, &env, func() (*testenv.Env, error) {
		d, err := os.MkdirTemp("", "verify-repos-")
		if err != nil {
			return nil, err
		}
		fileRoot = d
		return testenv.Start()
	}))
}

// startManager runs the gitops and delivery subsystems in one manager, as
// `strata manager` does.
func startManager(t *testing.T) {
	t.Helper()
	state := t.TempDir()
	managedtest.StartManager(t, env.Config, func(mgr ctrl.Manager) error {
		if err := gitopscontroller.Setup(mgr, gitopscontroller.Options{StateDir: state, Workers: 2, HealthPollInterval: 300 * time.Millisecond,
			AllowFileURLs: []string{fileRoot}, ReceiverAddr: "127.0.0.1:0"}); err != nil {
			return err
		}
		return deliverycontroller.Setup(mgr, deliverycontroller.Options{Workers: 2})
	})
}

// appConfig is the "app" each commit deploys: a ConfigMap whose errorRate
// the exporter below reports, as a real app's /metrics would.
func appConfig(rate string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  errorRate: %q\n", rate)
}

// exporter serves app_error_rate{app="web"} from the live ConfigMap web in
// ns, read at each scrape.
func exporter(t *testing.T, ns string) *promtest.Target {
	tg := promtest.NewTarget(t)
	tg.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "app_error_rate", Help: "error rate of the deployed app", ConstLabels: prometheus.Labels{"app": "web"},
	}, func() float64 {
		cm := &corev1.ConfigMap{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web"}, cm); err != nil {
			return 0
		}
		f, _ := strconv.ParseFloat(cm.Data["errorRate"], 64)
		return f
	}))
	return tg
}

func namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "verify-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
}

func errorRateTemplate(ns, address string, initialDelay time.Duration) *deliveryv1.AnalysisTemplate {
	return &deliveryv1.AnalysisTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "error-rate"},
		Spec: deliveryv1.AnalysisTemplateSpec{
			Args: []deliveryv1.Argument{{Name: "app"}},
			Metrics: []deliveryv1.Metric{{
				Name:             "error-rate",
				InitialDelay:     &metav1.Duration{Duration: initialDelay},
				Interval:         &metav1.Duration{Duration: time.Second},
				Count:            ptr.To[int32](2),
				NoData:           deliveryv1.NoDataFail,
				SuccessCondition: "result[0] < 0.05",
				Provider: deliveryv1.MetricProvider{Prometheus: &deliveryv1.PrometheusMetric{
					Address: address, Query: `app_error_rate{app="{{args.app}}"}`,
				}},
			}},
		},
	}
}

func gitRepo(ns, url string) *gitopsv1.GitRepository {
	return &gitopsv1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "src"},
		Spec: gitopsv1.GitRepositorySpec{URL: url, Interval: metav1.Duration{Duration: time.Hour}}}
}

func verifiedSync(ns string) *gitopsv1.Sync {
	return &gitopsv1.Sync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: gitopsv1.SyncSpec{
			SourceRef: gitopsv1.SourceReference{Name: "src"}, Path: "app", Prune: gitopsv1.PruneEnabled,
			Interval: metav1.Duration{Duration: time.Hour},
			Verify: &gitopsv1.Verify{
				Templates: []deliveryv1.TemplateRef{{Name: "error-rate"}},
				Args:      []deliveryv1.Argument{{Name: "app", Value: ptr.To("web")}},
			},
			Rollback: &gitopsv1.Rollback{OnVerificationFailure: true},
		}}
}

// push commits and asks the GitRepository to fetch, returning the revision.
func push(t *testing.T, repo *gittest.Repo, ns string, files map[string]string) string {
	t.Helper()
	h := repo.Commit("change", files)
	g := &gitopsv1.GitRepository{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "src"}, g); err != nil {
		t.Fatal(err)
	}
	p := client.MergeFrom(g.DeepCopy())
	g.SetAnnotations(map[string]string{gitopsv1.ReconcileRequestAnnotation: time.Now().Format(time.RFC3339Nano)})
	if err := env.Client.Patch(context.Background(), g, p); err != nil {
		t.Fatal(err)
	}
	return "main@sha1:" + h
}

// waitSync waits until the Sync's Ready condition has status and reason
// and its message contains every part.
func waitSync(t *testing.T, ns string, status metav1.ConditionStatus, reason string, parts ...string) *gitopsv1.Sync {
	t.Helper()
	s := &gitopsv1.Sync{}
	managedtest.Eventually(t, 90*time.Second, fmt.Sprintf("Sync web Ready=%s %s %v", status, reason, parts), func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web"}, s); err != nil {
			return err
		}
		c := conditions.Get(s, conditions.Ready)
		if c == nil {
			return fmt.Errorf("no Ready condition")
		}
		ok := c.Status == status && c.Reason == reason
		for _, p := range parts {
			ok = ok && strings.Contains(c.Message, p)
		}
		if !ok {
			return fmt.Errorf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
		}
		return nil
	})
	return s
}

func errorRateOf(t *testing.T, ns string) string {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web"}, cm); err != nil {
		t.Fatal(err)
	}
	return cm.Data["errorRate"]
}

// TestVerifyAndRollBack is the acceptance scenario: a commit whose app
// reports a low error rate is verified and recorded; a commit whose app
// reports a high error rate fails verification and is rolled back to the
// last verified revision, reported on the Sync with metric and value; the
// next good commit is verified again.
func TestVerifyAndRollBack(t *testing.T) {
	startManager(t)
	ns := namespace(t)
	tg := exporter(t, ns)
	prom := promtest.Start(t, tg.Addr)
	prom.WaitFor(t, `app_error_rate{app="web"}`)
	repo := gittest.NewRepo(t, fileRoot, ns)
	rev1 := "main@sha1:" + repo.Commit("good", map[string]string{"app/web.yaml": appConfig("0.01")})
	create(t, errorRateTemplate(ns, prom.Address, 2*time.Second), gitRepo(ns, repo.URL()), verifiedSync(ns))

	s := waitSync(t, ns, metav1.ConditionTrue, gitopsv1.ReasonReconciliationSucceeded, "verified revision "+rev1)
	if s.Status.LastVerifiedRevision != rev1 || s.Status.Verification == nil || s.Status.Verification.Phase != deliveryv1.PhaseSuccessful {
		t.Fatalf("lastVerifiedRevision %q, verification %+v", s.Status.LastVerifiedRevision, s.Status.Verification)
	}
	run := &deliveryv1.AnalysisRun{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: s.Status.Verification.RunName}, run); err != nil {
		t.Fatal(err)
	}
	if !metav1.IsControlledBy(run, s) || run.Status.MetricResults[0].Measurements[0].Query != `app_error_rate{app="web"}` {
		t.Errorf("run %s: owners %v, measurements %+v", run.Name, run.OwnerReferences, run.Status.MetricResults)
	}

	rev2 := push(t, repo, ns, map[string]string{"app/web.yaml": appConfig("0.5")})
	s = waitSync(t, ns, metav1.ConditionFalse, gitopsv1.ReasonVerificationFailed, rev2, "error-rate", "[0.5]", "rolled back to "+rev1)
	if s.Status.LastVerifiedRevision != rev1 || s.Status.LastAppliedRevision != rev1 || s.Status.RolledBackRevision != rev2 {
		t.Errorf("lastVerified %s lastApplied %s rolledBack %s", s.Status.LastVerifiedRevision, s.Status.LastAppliedRevision, s.Status.RolledBackRevision)
	}
	if got := errorRateOf(t, ns); got != "0.01" {
		t.Errorf("the app runs with errorRate %s after the rollback, want 0.01", got)
	}
	managedtest.HasEvent(t, env.Client, "web", gitopsv1.EventRolledBack)
	// It stays rolled back until the next commit.
	p := client.MergeFrom(s.DeepCopy())
	s.SetAnnotations(map[string]string{gitopsv1.ReconcileRequestAnnotation: "again"})
	if err := env.Client.Patch(context.Background(), s, p); err != nil {
		t.Fatal(err)
	}
	s = waitSync(t, ns, metav1.ConditionFalse, gitopsv1.ReasonVerificationFailed, "rolled back to "+rev1)
	if got := errorRateOf(t, ns); got != "0.01" {
		t.Errorf("the failed revision came back without a new commit (errorRate %s)", got)
	}

	rev3 := push(t, repo, ns, map[string]string{"app/web.yaml": appConfig("0.02")})
	s = waitSync(t, ns, metav1.ConditionTrue, gitopsv1.ReasonReconciliationSucceeded, "verified revision "+rev3)
	if s.Status.LastVerifiedRevision != rev3 {
		t.Errorf("lastVerifiedRevision %s, want %s", s.Status.LastVerifiedRevision, rev3)
	}
}

// TestNewCommitCancelsVerification: a verification still waiting when the
// next commit arrives is deleted, and the new revision gets its own run.
func TestNewCommitCancelsVerification(t *testing.T) {
	startManager(t)
	ns := namespace(t)
	repo := gittest.NewRepo(t, fileRoot, ns)
	rev1 := "main@sha1:" + repo.Commit("one", map[string]string{"app/web.yaml": appConfig("0.01")})
	// A Prometheus nobody asks before the hour is up.
	create(t, errorRateTemplate(ns, "http://127.0.0.1:1", time.Hour), gitRepo(ns, repo.URL()), verifiedSync(ns))
	s := waitSync(t, ns, metav1.ConditionFalse, gitopsv1.ReasonVerifying, rev1)
	first := s.Status.Verification.RunName

	rev2 := push(t, repo, ns, map[string]string{"app/web.yaml": appConfig("0.02")})
	s = waitSync(t, ns, metav1.ConditionFalse, gitopsv1.ReasonVerifying, rev2)
	if s.Status.Verification.RunName == first {
		t.Fatal("the new revision reuses the old run")
	}
	managedtest.WaitGone(t, env.Client, &deliveryv1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: first}}, 10*time.Second)
	if s.Status.LastVerifiedRevision != "" {
		t.Errorf("lastVerifiedRevision %q set without a verdict", s.Status.LastVerifiedRevision)
	}
}

// TestExampleIsValid creates the verified app of examples/gitops (its Sync
// and AnalysisTemplate) with a server-side dry run, so the API server's
// validation keeps the example honest.
func TestExampleIsValid(t *testing.T) {
	ns := namespace(t)
	for _, f := range []string{"clusters/local/storefront.yaml", "apps/storefront/analysis.yaml"} {
		data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "examples", "gitops", f))
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(data, &u.Object); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		u.SetNamespace(ns)
		if err := env.Client.Create(context.Background(), u, client.DryRunAll, client.FieldValidation("Strict")); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

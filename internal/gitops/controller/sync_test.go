package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/gitops/gittest"
)

func configMap(name string, extra ...string) string {
	s := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n", name)
	if len(extra) > 0 {
		s += "  annotations:\n"
		for _, e := range extra {
			s += "    " + e + "\n"
		}
	}
	return s + "data:\n  k: v\n"
}

func createSync(t *testing.T, ns, name, repo, path string, mutate func(*gitopsv1.Sync)) {
	t.Helper()
	s := &gitopsv1.Sync{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: gitopsv1.SyncSpec{
			SourceRef: gitopsv1.SourceReference{Name: repo},
			Path:      path,
			Interval:  metav1.Duration{Duration: time.Hour},
			Prune:     gitopsv1.PruneEnabled,
		},
	}
	if mutate != nil {
		mutate(s)
	}
	if err := env.Client.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

func getSync(t *testing.T, ns, name string) *gitopsv1.Sync {
	t.Helper()
	s := &gitopsv1.Sync{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		t.Fatal(err)
	}
	return s
}

// waitSync waits until the Sync's Ready condition has status want and its
// reason or message contains contains.
func waitSync(t *testing.T, ns, name string, want metav1.ConditionStatus, contains string) *gitopsv1.Sync {
	t.Helper()
	s := &gitopsv1.Sync{}
	eventually(t, 30*time.Second, "Sync "+name+" Ready="+string(want)+" ~ "+contains, func() (bool, string) {
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
			return false, err.Error()
		}
		st, reason, msg := readyOf(s)
		return st == want && strings.Contains(reason+" "+msg, contains), fmt.Sprintf("Ready=%s %s: %s", st, reason, msg)
	})
	return s
}

func exists(t *testing.T, apiVersion, kind, ns, name string) bool {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u)
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil && u.GetDeletionTimestamp() == nil
}

// push commits and asks the GitRepository to fetch now, returning the new
// revision.
func push(t *testing.T, repo *gittest.Repo, ns, name, msg string, files map[string]string) string {
	t.Helper()
	h := repo.Commit(msg, files)
	g := &gitopsv1.GitRepository{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, g); err != nil {
		t.Fatal(err)
	}
	requestReconcile(t, g)
	rev := "main@sha1:" + h
	waitRepo(t, ns, name, metav1.ConditionTrue, rev)
	return rev
}

func TestSyncApplyPruneAndBadInput(t *testing.T) {
	ns := newNamespace(t)
	repo := gittest.NewRepo(t, t.TempDir(), "app")
	h := repo.Commit("one", map[string]string{
		"app/a.yaml":    configMap("a"),
		"app/b.yaml":    configMap("b"),
		"app/keep.yaml": configMap("keep", "strata.dev/prune: disabled"),
	})
	createRepo(t, ns, "src", repo.URL(), nil, "")
	createSync(t, ns, "app", "src", "app", nil)
	rev1 := "main@sha1:" + h
	s := waitSync(t, ns, "app", metav1.ConditionTrue, rev1)
	if s.Status.LastAppliedRevision != rev1 || len(s.Status.Inventory) != 3 || s.Status.History[0].Result != gitopsv1.ReasonReconciliationSucceeded {
		t.Fatalf("status after first apply = %+v", s.Status)
	}
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "a"}, cm); err != nil {
		t.Fatal(err)
	}
	if cm.Labels[LabelSyncName] != "app" {
		t.Errorf("applied object labels = %v, want the Sync's ownership labels", cm.Labels)
	}

	// Drift is corrected on the next reconcile.
	cm.Data["k"] = "edited"
	if err := env.Client.Update(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	requestReconcile(t, getSync(t, ns, "app"))
	eventually(t, 20*time.Second, "drift corrected", func() (bool, string) {
		_ = env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "a"}, cm)
		return cm.Data["k"] == "v", cm.Data["k"]
	})

	// A commit that removes objects prunes them, except the annotated one.
	rev2 := push(t, repo, ns, "src", "two", map[string]string{"app/b.yaml": "", "app/keep.yaml": "", "app/c.yaml": configMap("c")})
	waitSync(t, ns, "app", metav1.ConditionTrue, rev2)
	if exists(t, "v1", "ConfigMap", ns, "b") || !exists(t, "v1", "ConfigMap", ns, "c") || !exists(t, "v1", "ConfigMap", ns, "keep") {
		t.Errorf("after rev2: b exists=%v (want false), c=%v keep=%v (want true)", exists(t, "v1", "ConfigMap", ns, "b"), exists(t, "v1", "ConfigMap", ns, "c"), exists(t, "v1", "ConfigMap", ns, "keep"))
	}

	// Bad input keeps the last applied revision and prunes nothing.
	bad := map[string]struct {
		files   map[string]string
		reason  string
		says    string
		stalled bool // only a new commit can fix it: kstatus must read Failed, not InProgress
	}{
		"invalid YAML":      {map[string]string{"app/c.yaml": "", "app/broken.yaml": "kind: [\n"}, gitopsv1.ReasonBuildFailed, "app/broken.yaml: document 1: invalid YAML", true},
		"rejected manifest": {map[string]string{"app/broken.yaml": configMap("Bad_Name")}, gitopsv1.ReasonApplyFailed, "ConfigMap/" + ns + "/Bad_Name", false},
		"empty build":       {map[string]string{"app/broken.yaml": "", "app/a.yaml": "", "app/c.yaml": "", "app/README.md": "empty"}, gitopsv1.ReasonPruneFailed, "refusing to prune", true},
	}
	for _, name := range []string{"invalid YAML", "rejected manifest", "empty build"} {
		tc := bad[name]
		t.Run(name, func(t *testing.T) {
			rev := push(t, repo, ns, "src", name, tc.files)
			s := waitSync(t, ns, "app", metav1.ConditionFalse, tc.says)
			if _, reason, _ := readyOf(s); reason != tc.reason {
				t.Errorf("reason = %s, want %s", reason, tc.reason)
			}
			if got := conditions.IsTrue(s, conditions.Stalled); got != tc.stalled {
				t.Errorf("Stalled = %v, want %v", got, tc.stalled)
			}
			if tc.stalled {
				// A spec change that cannot fix the commit either: the new
				// generation is processed and reported Stalled, so kstatus
				// reads Failed rather than forever in progress.
				patch := client.MergeFrom(s.DeepCopy())
				s.Spec.Interval.Duration += time.Second
				if err := env.Client.Patch(context.Background(), s, patch); err != nil {
					t.Fatal(err)
				}
				eventually(t, 30*time.Second, "stalled Sync observes its new generation", func() (bool, string) {
					got := getSync(t, ns, "app")
					return got.Status.ObservedGeneration == got.Generation && conditions.IsTrue(got, conditions.Stalled),
						fmt.Sprintf("generation %d observed %d", got.Generation, got.Status.ObservedGeneration)
				})
			}
			if s.Status.LastAppliedRevision != rev2 || s.Status.LastAttemptedRevision != rev {
				t.Errorf("lastApplied=%s lastAttempted=%s, want %s and %s", s.Status.LastAppliedRevision, s.Status.LastAttemptedRevision, rev2, rev)
			}
			if !exists(t, "v1", "ConfigMap", ns, "a") || !exists(t, "v1", "ConfigMap", ns, "c") {
				t.Error("a failed revision pruned running objects")
			}
		})
	}
	// A good commit recovers.
	rev := push(t, repo, ns, "src", "fix", map[string]string{"app/a.yaml": configMap("a"), "app/README.md": ""})
	s = waitSync(t, ns, "app", metav1.ConditionTrue, rev)
	if exists(t, "v1", "ConfigMap", ns, "c") || conditions.Get(s, conditions.Stalled) != nil {
		t.Errorf("after the fix: c exists=%v, stalled=%v", exists(t, "v1", "ConfigMap", ns, "c"), conditions.Get(s, conditions.Stalled))
	}
}

const widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.test.strata.dev
spec:
  group: test.strata.dev
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
`

func widget(name string) string {
	return fmt.Sprintf("apiVersion: test.strata.dev/v1\nkind: Widget\nmetadata:\n  name: %s\nspec:\n  size: 1\n", name)
}

// setWidgetStatus writes a Widget's status conditions as a controller would.
func setWidgetStatus(t *testing.T, ns, name string, conds ...map[string]any) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("test.strata.dev/v1")
	u.SetKind("Widget")
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		t.Fatal(err)
	}
	list := make([]any, 0, len(conds))
	for _, c := range conds {
		c["lastTransitionTime"] = time.Now().UTC().Format(time.RFC3339)
		list = append(list, c)
	}
	_ = unstructured.SetNestedSlice(u.Object, list, "status", "conditions")
	if err := env.Client.Status().Update(context.Background(), u); err != nil {
		t.Fatal(err)
	}
}

func TestSyncCRDStagesHealthDependsOnRollback(t *testing.T) {
	ns := newNamespace(t)
	repo := gittest.NewRepo(t, t.TempDir(), "infra")
	// One commit carries a new API and its first instance.
	h := repo.Commit("api", map[string]string{
		"infra/crd.yaml": widgetCRD,
		"db/db.yaml":     widget("db"),
		"app/w1.yaml":    widget("w1"),
	})
	createRepo(t, ns, "src", repo.URL(), nil, "")
	createSync(t, ns, "infra", "src", "infra", nil)
	createSync(t, ns, "db", "src", "db", func(s *gitopsv1.Sync) {
		s.Spec.DependsOn = []gitopsv1.Dependency{{Name: "infra"}}
	})
	// The app waits for the database object to be Ready (CEL readyWhen).
	createSync(t, ns, "app", "src", "app", func(s *gitopsv1.Sync) {
		s.Spec.DependsOn = []gitopsv1.Dependency{{
			APIVersion: "test.strata.dev/v1", Kind: "Widget", Name: "db",
			ReadyWhen: "self.?status.?conditions.orValue([]).exists(c, c.type == 'Ready' && c.status == 'True')",
		}}
		s.Spec.Wait = true
		s.Spec.Timeout = &metav1.Duration{Duration: 20 * time.Second}
		s.Spec.Rollback = &gitopsv1.Rollback{OnHealthFailure: true}
	})
	rev1 := "main@sha1:" + h
	waitSync(t, ns, "infra", metav1.ConditionTrue, rev1)
	waitSync(t, ns, "db", metav1.ConditionTrue, rev1)
	waitSync(t, ns, "app", metav1.ConditionFalse, gitopsv1.ReasonDependencyNotReady)
	if exists(t, "test.strata.dev/v1", "Widget", ns, "w1") {
		t.Fatal("the app was applied before its dependency was ready")
	}
	setWidgetStatus(t, ns, "db", map[string]any{"type": "Ready", "status": "True", "reason": "Available"})
	// w1 reports no conditions, which kstatus reads as Current.
	s := waitSync(t, ns, "app", metav1.ConditionTrue, rev1)
	if !conditions.IsTrue(s, gitopsv1.Healthy) || s.Status.LastHealthyRevision != rev1 {
		t.Fatalf("Healthy=%v lastHealthy=%s", conditions.Get(s, gitopsv1.Healthy), s.Status.LastHealthyRevision)
	}

	// Revision 2 adds a Deployment that cannot become available here (no
	// controllers run) and w2, which then stalls: the health check fails
	// early, before the timeout, and the Sync rolls back to revision 1 (both
	// pruned), naming both revisions.
	rev2 := push(t, repo, ns, "src", "w2", map[string]string{"app/w2.yaml": widget("w2"), "app/web.yaml": deployment})
	waitSync(t, ns, "app", metav1.ConditionFalse, "waiting for Deployment/"+ns+"/web")
	setWidgetStatus(t, ns, "w2", map[string]any{"type": "Ready", "status": "False", "reason": "Broken"}, map[string]any{"type": "Stalled", "status": "True", "reason": "Broken", "message": "cannot ever work"})
	start := time.Now()
	s = waitSync(t, ns, "app", metav1.ConditionFalse, gitopsv1.ReasonRolledBack)
	if time.Since(start) > 15*time.Second {
		t.Errorf("a stalled object waited out the timeout (%s) instead of failing early", time.Since(start))
	}
	_, _, msg := readyOf(s)
	if !strings.Contains(msg, rev2) || !strings.Contains(msg, rev1) || s.Status.LastAppliedRevision != rev1 {
		t.Errorf("rollback message %q / lastApplied %s: want both revisions named and %s applied", msg, s.Status.LastAppliedRevision, rev1)
	}
	eventually(t, 10*time.Second, "w2 and web pruned by the rollback", func() (bool, string) {
		return !exists(t, "test.strata.dev/v1", "Widget", ns, "w2") && !exists(t, "apps/v1", "Deployment", ns, "web"), ""
	})
	// It stays rolled back (no flapping) until a new commit arrives.
	requestReconcile(t, getSync(t, ns, "app"))
	time.Sleep(time.Second)
	if exists(t, "test.strata.dev/v1", "Widget", ns, "w2") {
		t.Error("the failed revision was applied again without a new commit")
	}
	rev3 := push(t, repo, ns, "src", "fix", map[string]string{"app/w2.yaml": "", "app/web.yaml": ""})
	waitSync(t, ns, "app", metav1.ConditionTrue, rev3)
}

func TestSyncServiceAccountImpersonation(t *testing.T) {
	ns := newNamespace(t)
	repo := gittest.NewRepo(t, t.TempDir(), "app")
	h := repo.Commit("one", map[string]string{"app/a.yaml": configMap("a")})
	ctx := context.Background()
	if err := env.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tenant"}}); err != nil {
		t.Fatal(err)
	}
	createRepo(t, ns, "src", repo.URL(), nil, "")
	createSync(t, ns, "app", "src", "app", func(s *gitopsv1.Sync) { s.Spec.ServiceAccountName = "tenant" })
	s := waitSync(t, ns, "app", metav1.ConditionFalse, gitopsv1.ReasonApplyFailed)
	if _, _, msg := readyOf(s); !strings.Contains(msg, "ConfigMap/"+ns+"/a") || !strings.Contains(msg, "forbidden") {
		t.Errorf("message = %q, want it to name the object and say forbidden", msg)
	}
	if exists(t, "v1", "ConfigMap", ns, "a") {
		t.Error("the object was written although the service account may not")
	}
	_ = h
}

package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/gitops/gittest"
	"github.com/strata-dev/strata/internal/kit/podtemplate"
	"github.com/strata-dev/strata/internal/scheme"
)

// rolledDeployment is a Deployment whose image is the version.
func rolledDeployment(version string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "example.com/web:` + version + `"}]
`
}

const webRollout = `apiVersion: delivery.strata.dev/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  targetRef: {kind: Deployment, name: web}
  service: web
  strategy:
    canary:
      steps:
      - setWeight: 20
      - pause: {duration: 10s}
`

// fakeRollout stands in for the Rollout controller (which does not run in
// this package's manager): it marks the Deployment as the controller does
// and writes the Rollout's status about the Deployment's current template.
type fakeRollout struct {
	t      *testing.T
	ns     string
	stable deliveryv1.RevisionInfo
}

// current returns the Deployment's template revision: its hash and the Git
// revision the Sync annotated it with.
func (f *fakeRollout) current() deliveryv1.RevisionInfo {
	f.t.Helper()
	d := &appsv1.Deployment{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "web"}, d); err != nil {
		f.t.Fatal(err)
	}
	return deliveryv1.RevisionInfo{PodTemplateHash: podtemplate.Hash(&d.Spec.Template), GitRevision: d.Annotations[deliveryv1.GitRevisionAnnotation]}
}

// adopt marks the Deployment with the Rollout's annotation and pause, with
// the Rollout's own field manager, as the controller does.
func (f *fakeRollout) adopt() {
	f.t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"namespace": f.ns, "name": "web", "annotations": map[string]any{deliveryv1.RolloutAnnotation: "web"}},
		"spec":     map[string]any{"paused": true},
	}}
	if err := env.Client.Patch(context.Background(), u, client.Apply, client.ForceOwnership, client.FieldOwner(deliveryv1.RolloutFieldManagerPrefix+f.ns+"/web")); err != nil { //nolint:staticcheck // unstructured SSA
		f.t.Fatal(err)
	}
}

func (f *fakeRollout) write(mutate func(st *deliveryv1.RolloutStatus)) {
	f.t.Helper()
	ro := &deliveryv1.Rollout{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "web"}, ro); err != nil {
		f.t.Fatal(err)
	}
	ro.Status = deliveryv1.RolloutStatus{ObservedGeneration: ro.Generation, Strategy: "Canary"}
	mutate(&ro.Status)
	if err := env.Client.Status().Update(context.Background(), ro); err != nil {
		f.t.Fatal(err)
	}
}

// healthy: the current template is stable and serves every pod.
func (f *fakeRollout) healthy() {
	f.stable = f.current()
	f.write(func(st *deliveryv1.RolloutStatus) {
		st.Phase, st.Message = deliveryv1.RolloutPhaseHealthy, "Deployment web runs revision "+f.stable.GitRevision
		st.StableRevision = ptr.To(f.stable)
		st.Conditions = []metav1.Condition{{Type: conditions.Ready, Status: metav1.ConditionTrue, Reason: deliveryv1.ReasonRolloutHealthy, Message: st.Message, LastTransitionTime: metav1.Now()}}
	})
}

// paused: the current template is the canary, at a pause step.
func (f *fakeRollout) paused() {
	canary := f.current()
	f.write(func(st *deliveryv1.RolloutStatus) {
		st.Phase, st.Message = deliveryv1.RolloutPhasePaused, "step 2 of 2: pause 10s"
		st.StableRevision, st.CanaryRevision, st.Weight = ptr.To(f.stable), ptr.To(canary), 20
		st.Conditions = []metav1.Condition{
			{Type: conditions.Ready, Status: metav1.ConditionFalse, Reason: deliveryv1.ReasonRolloutPaused, Message: st.Message, LastTransitionTime: metav1.Now()},
			{Type: conditions.Reconciling, Status: metav1.ConditionTrue, Reason: deliveryv1.ReasonRolloutPaused, Message: st.Message, LastTransitionTime: metav1.Now()},
		}
	})
}

// abort: the current template was aborted; traffic is on stable.
func (f *fakeRollout) abort() {
	canary := f.current()
	f.write(func(st *deliveryv1.RolloutStatus) {
		st.StableRevision, st.CanaryRevision = ptr.To(f.stable), ptr.To(canary)
		st.Aborted = &deliveryv1.AbortStatus{Revision: canary, Stable: f.stable, Reason: deliveryv1.ReasonAnalysisFailed, Message: "metric error-rate failed", At: metav1.Now()}
		st.Phase, st.Message = deliveryv1.RolloutPhaseAborted, "aborted"
		st.Conditions = []metav1.Condition{
			{Type: conditions.Ready, Status: metav1.ConditionFalse, Reason: deliveryv1.ReasonRolloutAborted, Message: "aborted", LastTransitionTime: metav1.Now()},
			{Type: conditions.Stalled, Status: metav1.ConditionTrue, Reason: deliveryv1.ReasonRolloutAborted, Message: "aborted", LastTransitionTime: metav1.Now()},
		}
	})
}

func deploymentAnnotation(t *testing.T, ns, key string) string {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web"}, d); err != nil {
		t.Fatal(err)
	}
	return d.Annotations[key]
}

// TestSyncFollowsRollout: a Sync that waits for health takes a rolled-out
// Deployment's health from its Rollout. The Sync marks the Deployment with
// the Git revision of its template; a new template is not healthy while the
// Rollout still reports the revision before (no premature Ready), nor while
// it is a canary at a pause step, and is once the Rollout made it stable.
func TestSyncFollowsRollout(t *testing.T) {
	ns := newNamespace(t)
	repo := gittest.NewRepo(t, t.TempDir(), "app")
	h := repo.Commit("v1", map[string]string{"app/web.yaml": rolledDeployment("1"), "app/rollout.yaml": webRollout})
	rev1 := "main@sha1:" + h
	createRepo(t, ns, "src", repo.URL(), nil, "")
	createSync(t, ns, "app", "src", "app", func(s *gitopsv1.Sync) { s.Spec.Wait = true })
	ro := &fakeRollout{t: t, ns: ns}
	// The Rollout of the same revision targets the Deployment: the first
	// apply already carries the Git revision, and the Sync waits for the
	// Rollout (the Deployment's own status would do here: no controller
	// runs it).
	waitSync(t, ns, "app", metav1.ConditionFalse, "Deployment/"+ns+"/web: Rollout "+ns+"/web: waiting for the Ready condition")
	if got := deploymentAnnotation(t, ns, deliveryv1.GitRevisionAnnotation); got != rev1 {
		t.Fatalf("git-revision annotation %q, want %q", got, rev1)
	}
	ro.adopt()
	ro.healthy()
	waitSync(t, ns, "app", metav1.ConditionTrue, rev1)

	rev2 := push(t, repo, ns, "src", "v2", map[string]string{"app/web.yaml": rolledDeployment("2")})
	// The Rollout still says Ready for revision 1: the Sync must not.
	s := waitSync(t, ns, "app", metav1.ConditionFalse, "waiting for Rollout "+ns+"/web to take Deployment "+ns+"/web's template "+rev2)
	if conditions.IsTrue(s, gitopsv1.Healthy) {
		t.Fatalf("Healthy while the Rollout has not seen %s", rev2)
	}
	if got := deploymentAnnotation(t, ns, deliveryv1.GitRevisionAnnotation); got != rev2 {
		t.Fatalf("git-revision annotation %q, want %q", got, rev2)
	}
	if got := deploymentAnnotation(t, ns, deliveryv1.RolloutAnnotation); got != "web" {
		t.Errorf("the Sync removed the Rollout's annotation: %q", got)
	}
	ro.paused()
	waitSync(t, ns, "app", metav1.ConditionFalse, "is rolling out revision")
	ro.healthy()
	s = waitSync(t, ns, "app", metav1.ConditionTrue, rev2)
	if s.Status.LastHealthyRevision != rev2 {
		t.Errorf("last healthy revision %s, want %s", s.Status.LastHealthyRevision, rev2)
	}
}

// TestSyncReportsRolloutAbort: a Sync that does not wait is woken by the
// Rollout's abort (its interval is an hour) and reports it as
// RolloutAborted naming both revisions. Applying the same revision again
// writes nothing (counted with a watch on the Deployment), and the next
// commit is rolled out without a retry.
func TestSyncReportsRolloutAbort(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	repo := gittest.NewRepo(t, t.TempDir(), "app")
	h := repo.Commit("v1", map[string]string{"app/web.yaml": rolledDeployment("1"), "app/rollout.yaml": webRollout})
	rev1 := "main@sha1:" + h
	createRepo(t, ns, "src", repo.URL(), nil, "")
	createSync(t, ns, "app", "src", "app", nil)
	waitSync(t, ns, "app", metav1.ConditionTrue, rev1)
	ro := &fakeRollout{t: t, ns: ns}
	ro.adopt()
	ro.healthy()

	rev2 := push(t, repo, ns, "src", "v2 (bad)", map[string]string{"app/web.yaml": rolledDeployment("2")})
	waitSync(t, ns, "app", metav1.ConditionTrue, rev2)
	ro.abort()
	s := waitSync(t, ns, "app", metav1.ConditionFalse, gitopsv1.ReasonRolloutAborted)
	_, _, msg := readyOf(s)
	for _, want := range []string{"Rollout " + ns + "/web", "aborted revision " + rev2, "stable revision " + rev1, "metric error-rate failed"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Ready message %q does not say %q", msg, want)
		}
	}
	if !conditions.IsTrue(s, conditions.Stalled) || s.Status.History[0].Result != gitopsv1.ReasonRolloutAborted {
		t.Errorf("Stalled=%v history[0]=%+v; want Stalled and a RolloutAborted entry", conditions.Get(s, conditions.Stalled), s.Status.History[0])
	}

	// Reconciling the aborted revision again (three times) writes nothing
	// to the Deployment: its template stays the aborted one, and the
	// Rollout keeps it aborted.
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(ctx, &appsv1.DeploymentList{}, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	before := &appsv1.Deployment{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, before); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		requestReconcile(t, getSync(t, ns, "app"))
		want := getSync(t, ns, "app").Annotations[gitopsv1.ReconcileRequestAnnotation]
		eventually(t, 30*time.Second, "reconcile request handled", func() (bool, string) {
			s := getSync(t, ns, "app")
			return s.Status.LastHandledReconcileAt == want, s.Status.LastHandledReconcileAt
		})
	}
	s = waitSync(t, ns, "app", metav1.ConditionFalse, gitopsv1.ReasonRolloutAborted)
	writes := 0
	for drained := false; !drained; {
		select {
		case ev := <-w.ResultChan():
			if d, ok := ev.Object.(*appsv1.Deployment); ok && ev.Type == watch.Modified && d.ResourceVersion != before.ResourceVersion {
				writes++
			}
		case <-time.After(time.Second):
			drained = true
		}
	}
	after := &appsv1.Deployment{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, after); err != nil {
		t.Fatal(err)
	}
	if writes != 0 || after.ResourceVersion != before.ResourceVersion || after.Generation != before.Generation {
		t.Errorf("re-applying the aborted revision wrote the Deployment %d times (resourceVersion %s -> %s, generation %d -> %d); want no write",
			writes, before.ResourceVersion, after.ResourceVersion, before.Generation, after.Generation)
	}
	if s.Status.LastAppliedRevision != rev2 {
		t.Errorf("last applied %s, want %s (no rollback at the Git level: the Rollout already took traffic back)", s.Status.LastAppliedRevision, rev2)
	}

	// The next commit starts afresh: its template is not the aborted one,
	// and the Sync applies and reports it without any retry.
	rev3 := push(t, repo, ns, "src", "v3 (fix)", map[string]string{"app/web.yaml": rolledDeployment("3")})
	s = waitSync(t, ns, "app", metav1.ConditionTrue, rev3)
	if c := conditions.Get(s, conditions.Stalled); c != nil {
		t.Errorf("still Stalled after a new commit: %+v", c)
	}
	if got := deploymentAnnotation(t, ns, deliveryv1.GitRevisionAnnotation); got != rev3 {
		t.Errorf("git-revision annotation %q, want %q", got, rev3)
	}
}

// TestSyncReadsRolloutAsItsServiceAccount: the attack is a tenant whose
// Deployment names, in the Rollout annotation, a Rollout its service
// account may not read, hoping the Sync reads it with the manager's rights
// (and reports its verdict). The read is made as the service account and
// fails, naming the Rollout; the Sync is not Ready.
func TestSyncReadsRolloutAsItsServiceAccount(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	tenantAccount(t, ns, "tenant")
	// The tenant may apply Deployments, but not read Rollouts.
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deployments"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"*"}}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deployments"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "deployments"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "tenant"}}}
	for _, o := range []client.Object{role, binding} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	victim := &deliveryv1.Rollout{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other"},
		Spec: deliveryv1.RolloutSpec{TargetRef: deliveryv1.RolloutTargetReference{Kind: "Deployment", Name: "other"}, Service: "other",
			Strategy: deliveryv1.RolloutStrategy{Canary: &deliveryv1.CanaryStrategy{}}}}
	if err := env.Client.Create(ctx, victim); err != nil {
		t.Fatal(err)
	}
	repo := gittest.NewRepo(t, t.TempDir(), "app")
	repo.Commit("v1", map[string]string{"app/web.yaml": strings.Replace(rolledDeployment("1"), "  name: web\n", "  name: web\n  annotations: {"+deliveryv1.RolloutAnnotation+": other}\n", 1)})
	createRepo(t, ns, "src", repo.URL(), nil, "")
	createSync(t, ns, "app", "src", "app", func(s *gitopsv1.Sync) {
		s.Spec.ServiceAccountName = "tenant"
		s.Spec.Wait = true
	})
	s := waitSync(t, ns, "app", metav1.ConditionFalse, gitopsv1.ReasonHealthCheckFailed)
	if _, _, msg := readyOf(s); !strings.Contains(msg, fmt.Sprintf("Rollout %s/other", ns)) || !strings.Contains(msg, "forbidden") {
		t.Errorf("message %q: want a forbidden error naming the Rollout", msg)
	}
}

package controller

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/gitops/gittest"
)

// TestSyncReadyWhenErrors: a readyWhen with a typo in a field path is
// reported naming the expression (and retried, so fixing the expression lets
// the Sync go on); one that does not compile, or a runaway one stopped by the
// CEL cost limit, stalls the Sync. Before, both read as "not ready" forever.
func TestSyncReadyWhenErrors(t *testing.T) {
	ns := newNamespace(t)
	repo := gittest.NewRepo(t, t.TempDir(), "app")
	repo.Commit("app", map[string]string{"app/cm.yaml": configMap("out")})
	createRepo(t, ns, "src", repo.URL(), nil, "")
	dep := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}, Data: map[string]string{"phase": "ready"}}
	if err := env.Client.Create(context.Background(), dep); err != nil {
		t.Fatal(err)
	}
	on := func(expr string) func(*gitopsv1.Sync) {
		return func(s *gitopsv1.Sync) {
			s.Spec.DependsOn = []gitopsv1.Dependency{{APIVersion: "v1", Kind: "ConfigMap", Name: "db", ReadyWhen: expr}}
		}
	}
	const (
		typo    = "self.dta.phase == 'ready'"
		broken  = "self.data.phase =="
		runaway = "[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(e, a+b+c+d+e > 0 && self.data.phase == 'ready')))))"
	)
	createSync(t, ns, "typo", "src", "app", on(typo))
	createSync(t, ns, "broken", "src", "app", on(broken))
	createSync(t, ns, "runaway", "src", "app", on(runaway))

	s := waitSync(t, ns, "typo", metav1.ConditionFalse, gitopsv1.ReasonReadyWhenInvalid)
	_, _, msg := readyOf(s)
	if !strings.Contains(msg, typo) || !strings.Contains(msg, "dta") || !strings.Contains(msg, "ConfigMap "+ns+"/db") {
		t.Errorf("typo message %q does not name the expression, the field and the dependency", msg)
	}
	if conditions.IsTrue(s, conditions.Stalled) {
		t.Error("a readyWhen that cannot be evaluated stalled the Sync; it should be retried")
	}

	for name, want := range map[string]string{"broken": broken, "runaway": "cost limit"} {
		s := waitSync(t, ns, name, metav1.ConditionFalse, gitopsv1.ReasonReadyWhenInvalid)
		_, _, msg := readyOf(s)
		if !strings.Contains(msg, want) || !strings.Contains(msg, "readyWhen") {
			t.Errorf("%s: message %q does not name %q", name, msg, want)
		}
		st := conditions.Get(s, conditions.Stalled)
		if st == nil || st.Status != metav1.ConditionTrue || st.Reason != gitopsv1.ReasonReadyWhenInvalid {
			t.Errorf("%s: Stalled = %+v, want True/%s", name, st, gitopsv1.ReasonReadyWhenInvalid)
		}
		if s.Status.ObservedGeneration != s.Generation {
			t.Errorf("%s: observedGeneration %d, generation %d: kstatus would read a stalled Sync as in progress", name, s.Status.ObservedGeneration, s.Generation)
		}
		if exists(t, "v1", "ConfigMap", ns, "out") {
			t.Errorf("%s: the Sync applied although its readyWhen is invalid", name)
		}
	}

	// Fixing the typo lets the Sync apply.
	s = getSync(t, ns, "typo")
	patch := client.MergeFrom(s.DeepCopy())
	s.Spec.DependsOn[0].ReadyWhen = "self.data.phase == 'ready'"
	if err := env.Client.Patch(context.Background(), s, patch); err != nil {
		t.Fatal(err)
	}
	waitSync(t, ns, "typo", metav1.ConditionTrue, "applied revision")
	if !exists(t, "v1", "ConfigMap", ns, "out") {
		t.Error("the fixed Sync did not apply")
	}
}

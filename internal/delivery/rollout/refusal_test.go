package rollout

import (
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
)

// notReady waits for Ready=False with reason, and a message containing
// every one of parts.
func notReady(t *testing.T, ro *deliveryv1.Rollout, reason string, parts ...string) {
	t.Helper()
	waitRollout(t, ro, "Ready=False "+reason, func(ro *deliveryv1.Rollout) error {
		c := conditions.Get(ro, conditions.Ready)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != reason {
			return fmt.Errorf("Ready %+v", c)
		}
		for _, p := range parts {
			if !strings.Contains(c.Message, p) {
				return fmt.Errorf("message %q does not name %q", c.Message, p)
			}
		}
		return nil
	})
}

// untouched checks that a Deployment is neither paused nor annotated by a
// Rollout, and runs one ReplicaSet.
func untouched(t *testing.T, ns, name string) {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
		t.Fatal(err)
	}
	if d.Spec.Paused || d.Annotations[deliveryv1.RolloutAnnotation] != "" {
		t.Errorf("Deployment %s/%s was touched: paused=%v annotations %v", ns, name, d.Spec.Paused, d.Annotations)
	}
	rss := &appsv1.ReplicaSetList{}
	if err := env.Client.List(context.Background(), rss, client.InNamespace(ns), client.MatchingLabels(d.Spec.Selector.MatchLabels)); err != nil {
		t.Fatal(err)
	}
	for _, rs := range rss.Items {
		if !metav1.IsControlledBy(&rs, d) {
			t.Errorf("ReplicaSet %s/%s in the victim's namespace is not the Deployment's: owners %v", ns, rs.Name, rs.OwnerReferences)
		}
	}
}

// TestRefusals: a StatefulSet target is refused (Stalled, naming it); a
// missing Deployment, a missing Service and a Service that selects other
// pods leave the Rollout not Ready with a reason naming the object and
// change nothing.
func TestRefusals(t *testing.T) {
	startManager(t)
	ns := namespace(t)
	create(t, deployment(ns, "web", 1, "web:1"), service(ns, "web", map[string]string{"app": "web"}),
		service(ns, "other", map[string]string{"app": "other"}), deployment(ns, "lonely", 1, "lonely:1"))

	sts := canaryRollout(ns, "sts", "db", weight(50))
	sts.Spec.TargetRef.Kind = "StatefulSet"
	missing := canaryRollout(ns, "missing", "nope", weight(50))
	wrongSvc := canaryRollout(ns, "wrong-service", "web", weight(50))
	wrongSvc.Spec.Service = "other"
	noSvc := canaryRollout(ns, "no-service", "lonely", weight(50))
	create(t, sts, missing, wrongSvc, noSvc)

	notReady(t, sts, deliveryv1.ReasonTargetUnsupported, "StatefulSet", ns+"/db")
	if !conditions.IsTrue(sts, conditions.Stalled) {
		t.Errorf("StatefulSet target: Stalled should be True: %+v", sts.Status.Conditions)
	}
	notReady(t, missing, deliveryv1.ReasonTargetNotFound, "Deployment "+ns+"/nope")
	notReady(t, wrongSvc, deliveryv1.ReasonServiceSelectsNoPods, "Service "+ns+"/other", "Deployment web")
	notReady(t, noSvc, deliveryv1.ReasonServiceNotFound, "Service "+ns+"/lonely")
	untouched(t, ns, "web")
	untouched(t, ns, "lonely")

	// Fixing the Service lets the Rollout take the Deployment.
	svc := &corev1.Service{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "other"}, svc); err != nil {
		t.Fatal(err)
	}
	base := svc.DeepCopy()
	svc.Spec.Selector = map[string]string{"app": "web"}
	if err := env.Client.Patch(context.Background(), svc, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
	waitRollout(t, wrongSvc, "healthy", healthy)
}

// TestTenantCannotReachBeyondItsRights makes the attacks a tenant could
// try with a Rollout: target a Deployment of another namespace (a
// targetRef has no namespace: the name is looked up in the Rollout's own
// and not found), target a Deployment of its own namespace its service
// account may read but not change, and take a Deployment another Rollout
// already rolls out. Each is refused with a reason naming the object, and
// the victim is unchanged.
func TestTenantCannotReachBeyondItsRights(t *testing.T) {
	startManager(t)
	tenant, victim := namespace(t), namespace(t)
	create(t, deployment(victim, "victim", 2, "victim:1"), service(victim, "victim", map[string]string{"app": "victim"}))
	create(t, deployment(tenant, "web", 1, "web:1"), service(tenant, "web", map[string]string{"app": "web"}))
	create(t,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "reader"}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "reader"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"apps"}, Resources: []string{"deployments", "replicasets"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"get", "list", "watch"}},
		}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "reader"},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "reader"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "reader", Namespace: tenant}}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "nobody"}},
	)

	cross := canaryRollout(tenant, "cross", "victim", weight(50))
	cross.Spec.ServiceAccountName = "nobody"
	readOnly := canaryRollout(tenant, "read-only", "web", weight(50))
	readOnly.Spec.ServiceAccountName = "reader"
	create(t, cross, readOnly)
	// The account without rights cannot even read: refused, naming the
	// Deployment of its own namespace.
	notReady(t, cross, deliveryv1.ReasonAccessDenied, "Deployment "+tenant+"/victim", "forbidden")
	notReady(t, readOnly, deliveryv1.ReasonAccessDenied, "on Deployment "+tenant+"/web", "forbidden")
	// With the manager's rights the cross-namespace name is still looked
	// up in the tenant's namespace only.
	crossAdmin := canaryRollout(tenant, "cross-admin", "victim", weight(50))
	create(t, crossAdmin)
	notReady(t, crossAdmin, deliveryv1.ReasonTargetNotFound, "Deployment "+tenant+"/victim")
	untouched(t, victim, "victim")
	untouched(t, tenant, "web")

	// A second Rollout cannot take a Deployment another one rolls out.
	if err := env.Client.Delete(context.Background(), readOnly); err != nil {
		t.Fatal(err)
	}
	first := canaryRollout(tenant, "first", "web", weight(50))
	create(t, first)
	waitRollout(t, first, "healthy", healthy)
	second := canaryRollout(tenant, "second", "web", weight(50))
	create(t, second)
	notReady(t, second, deliveryv1.ReasonResourceConflict, "Deployment "+tenant+"/web", "Rollout first")
	waitRollout(t, first, "still healthy", healthy)
}

// TestValidation: the API server refuses Rollouts that are malformed
// before the controller sees them, with a message naming the rule.
func TestValidation(t *testing.T) {
	ns := namespace(t)
	cases := map[string]struct {
		mutate func(*deliveryv1.Rollout)
		want   string
	}{
		"no strategy": {func(ro *deliveryv1.Rollout) { ro.Spec.Strategy = deliveryv1.RolloutStrategy{} }, "set exactly one of canary, blueGreen"},
		"two strategies": {func(ro *deliveryv1.Rollout) {
			ro.Spec.Strategy.BlueGreen = &deliveryv1.BlueGreenStrategy{}
		}, "set exactly one of canary, blueGreen"},
		"a step with two actions": {func(ro *deliveryv1.Rollout) {
			ro.Spec.Strategy.Canary.Steps[0].Pause = &deliveryv1.RolloutPause{}
		}, "a step sets exactly one of setWeight, pause, analysis, setCanaryScale"},
		"weight above 100": {func(ro *deliveryv1.Rollout) {
			ro.Spec.Strategy.Canary.Steps[0].SetWeight = ptrInt32(150)
		}, "setWeight"},
		"a workload kind that is not one": {func(ro *deliveryv1.Rollout) { ro.Spec.TargetRef.Kind = "Pod" }, "targetRef.kind"},
		"preview is the active Service": {func(ro *deliveryv1.Rollout) {
			ro.Spec.Strategy = deliveryv1.RolloutStrategy{BlueGreen: &deliveryv1.BlueGreenStrategy{PreviewService: ro.Spec.Service}}
		}, "previewService must differ from spec.service"},
		"activeService other than spec.service": {func(ro *deliveryv1.Rollout) {
			ro.Spec.Strategy = deliveryv1.RolloutStrategy{BlueGreen: &deliveryv1.BlueGreenStrategy{ActiveService: "other"}}
		}, "activeService must equal spec.service"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ro := canaryRollout(ns, "invalid", "web", weight(50))
			tc.mutate(ro)
			err := env.Client.Create(context.Background(), ro)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("create: %v; want a refusal naming %q", err, tc.want)
			}
		})
	}
}

package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/gitops/apply"
	"github.com/strata-dev/strata/internal/gitops/inputs"
	"github.com/strata-dev/strata/internal/kit/health"
	"github.com/strata-dev/strata/internal/kit/podtemplate"
)

// A Sync and the Rollouts (delivery.strata.dev) that roll out the
// Deployments it applies:
//
//   - Every Deployment a Rollout targets (the live Deployment carries
//     health.RolloutAnnotation, or a Rollout of the same revision targets
//     it) gets health.GitRevisionAnnotation set to the revision applied, so
//     the Rollout records which commit brought a template. The annotation is
//     on the Deployment's metadata, not its pod template: applying the same
//     revision again changes nothing (a server-side apply without a change
//     is no write), and a commit that does not touch the template does not
//     start a rollout.
//   - The health of such a Deployment is the Rollout's for the Deployment's
//     current template (health.RolloutTarget), never the paused
//     Deployment's own.
//   - An aborted template is reported on the Sync whether or not it waits
//     for health: Ready=False and Stalled=True with reason RolloutAborted,
//     naming the Rollout and both revisions. Nothing is re-applied to "fix"
//     it (the Rollout keeps an aborted template aborted); the next commit
//     that changes the template starts a fresh rollout by itself.

var (
	deploymentGK = schema.GroupKind{Group: "apps", Kind: "Deployment"}
	rolloutGVK   = schema.GroupVersionKind{Group: health.RolloutGroup, Version: "v1alpha1", Kind: health.RolloutKind}
)

// isRolloutEntry reports whether an inventory entry is a Rollout.
func isRolloutEntry(e apply.Entry) bool {
	gv, _ := schema.ParseGroupVersion(e.APIVersion)
	return gv.Group == rolloutGVK.Group && e.Kind == rolloutGVK.Kind
}

// rolloutTargets records, during one apply, the Deployments that Rollouts
// roll out: Deployment entry key -> Rollout name.
type rolloutTargets struct {
	mu sync.Mutex
	by map[string]string
}

func (t *rolloutTargets) get(key string) string {
	if t == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.by[key]
}

func (t *rolloutTargets) entries() []apply.Entry {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]apply.Entry, 0, len(t.by))
	for k := range t.by {
		// key is group/kind/namespace/name
		parts := strings.SplitN(k, "/", 4)
		out = append(out, apply.Entry{APIVersion: "apps/v1", Kind: parts[1], Namespace: parts[2], Name: parts[3]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out
}

// newRolloutTargets finds the Deployments that Rollouts among objs target.
func newRolloutTargets(objs []*unstructured.Unstructured) *rolloutTargets {
	t := &rolloutTargets{by: map[string]string{}}
	for _, o := range objs {
		if o.GroupVersionKind().GroupKind() != rolloutGVK.GroupKind() {
			continue
		}
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "targetRef", "kind")
		name, _, _ := unstructured.NestedString(o.Object, "spec", "targetRef", "name")
		if kind != deploymentGK.Kind || name == "" {
			continue
		}
		e := apply.Entry{APIVersion: "apps/v1", Kind: kind, Namespace: o.GetNamespace(), Name: name}
		t.by[e.Key()] = o.GetName()
	}
	return t
}

// inventoryRolloutTargets finds, when this reconcile applied nothing (it
// only polls health), the Deployments that the Rollouts of the inventory
// target, reading those Rollouts as the Sync.
func inventoryRolloutTargets(ctx context.Context, sc *syncScope) (*rolloutTargets, error) {
	t := &rolloutTargets{by: map[string]string{}}
	for _, e := range sc.sync.Status.Inventory {
		gv, _ := schema.ParseGroupVersion(e.APIVersion)
		if gv.Group != rolloutGVK.Group || e.Kind != rolloutGVK.Kind {
			continue
		}
		ro := &unstructured.Unstructured{}
		ro.SetGroupVersionKind(rolloutGVK)
		if err := sc.reader.Get(ctx, types.NamespacedName{Namespace: e.Namespace, Name: e.Name}, ro); err != nil {
			if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
				continue
			}
			return nil, fmt.Errorf("cannot read Rollout %s/%s: %w", e.Namespace, e.Name, err)
		}
		for k, v := range newRolloutTargets([]*unstructured.Unstructured{ro}).by {
			t.by[k] = v
		}
	}
	return t, nil
}

// prepare is the applier's Prepare: it marks each Deployment a Rollout
// rolls out with the Git revision applied, and records it; in other objects
// it keeps the fields a Rollout wrote (inputs.KeepRolloutFields).
func (t *rolloutTargets) prepare(revision string) func(live, desired *unstructured.Unstructured) {
	return func(live, o *unstructured.Unstructured) {
		if o.GroupVersionKind().GroupKind() != deploymentGK {
			inputs.KeepRolloutFields(live, o)
			return
		}
		key := apply.EntryOf(o).Key()
		t.mu.Lock()
		defer t.mu.Unlock()
		name := t.by[key]
		if live != nil {
			if n := live.GetAnnotations()[health.RolloutAnnotation]; n != "" {
				name = n
			}
		}
		if name == "" {
			return
		}
		t.by[key] = name
		ann := o.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[health.GitRevisionAnnotation] = revision
		o.SetAnnotations(ann)
	}
}

// rolloutCheck collects, over one health check, the Deployments whose
// health a Rollout decided and the aborted templates among them.
type rolloutCheck struct {
	mu      sync.Mutex
	aborts  []string
	decided map[string]bool // entry keys
}

// override is the health of a Deployment that a Rollout rolls out: the
// Rollout's (read as the Sync, like every health read). A Rollout that is
// gone leaves the Deployment's own health.
func (rc *rolloutCheck) override(sc *syncScope) apply.Override {
	return func(ctx context.Context, u *unstructured.Unstructured) (health.Result, bool, error) {
		if u.GroupVersionKind().GroupKind() != deploymentGK {
			return health.Result{}, false, nil
		}
		name := u.GetAnnotations()[health.RolloutAnnotation]
		if name == "" {
			name = sc.rollouts.get(apply.EntryOf(u).Key())
		}
		if name == "" {
			return health.Result{}, false, nil
		}
		ro := &unstructured.Unstructured{}
		ro.SetGroupVersionKind(rolloutGVK)
		if err := sc.reader.Get(ctx, types.NamespacedName{Namespace: u.GetNamespace(), Name: name}, ro); err != nil {
			if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
				return health.Result{}, false, nil
			}
			return health.Result{}, false, fmt.Errorf("cannot read Rollout %s/%s that rolls out Deployment %s/%s: %w", u.GetNamespace(), name, u.GetNamespace(), u.GetName(), err)
		}
		res, aborted := health.RolloutTarget(u, ro, ownReplicaSetHashes(ctx, sc, u)...)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if rc.decided == nil {
			rc.decided = map[string]bool{}
		}
		rc.decided[apply.EntryOf(u).Key()] = true
		if aborted {
			rc.aborts = append(rc.aborts, res.Message)
		}
		return res, true, nil
	}
}

// ownReplicaSetHashes returns the pod-template-hash labels of the
// ReplicaSets that Deployment u controls and that run its current template:
// the Deployment controller names a template with a hash of its own, which
// a Rollout reports for a revision the Deployment rolled out by itself (the
// first one). They are read as the Sync; a read it may not make only
// leaves them out.
func ownReplicaSetHashes(ctx context.Context, sc *syncScope, u *unstructured.Unstructured) []string {
	d := &appsv1.Deployment{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, d); err != nil || d.Spec.Selector == nil {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil
	}
	list := &appsv1.ReplicaSetList{}
	if err := sc.reader.List(ctx, list, client.InNamespace(d.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		sc.log.V(1).Info("cannot list the ReplicaSets of a rolled-out Deployment", "deployment", d.Namespace+"/"+d.Name, "error", err.Error())
		return nil
	}
	var out []string
	for i := range list.Items {
		rs := &list.Items[i]
		if ref := metav1.GetControllerOfNoCopy(rs); ref != nil && ref.UID == d.UID && podtemplate.Same(&rs.Spec.Template, &d.Spec.Template) {
			if h := rs.Labels[podtemplate.HashLabel]; h != "" {
				out = append(out, h)
			}
		}
	}
	return out
}

// extra checks the Deployments that Rollouts roll out but that are not
// among checks (a Sync that does not wait, or whose healthChecks leave them
// out) for aborts only: an abort is reported whether or not the Sync waits.
func (rc *rolloutCheck) extra(ctx context.Context, sc *syncScope, checks []apply.Entry) error {
	in := map[string]bool{}
	for _, e := range checks {
		in[e.Key()] = true
	}
	var targets []apply.Entry
	for _, e := range sc.rollouts.entries() {
		if !in[e.Key()] {
			targets = append(targets, e)
		}
	}
	if len(targets) == 0 {
		return nil
	}
	_, err := apply.HealthWith(ctx, sc.reader, targets, rc.override(sc))
	return err
}

// rolloutAborted reports aborted rollouts of revision on the Sync: Ready=False
// and Stalled=True, reason RolloutAborted, and Healthy=False. Only a new
// revision moves it on, so it waits for the source (or the Rollout's watch)
// instead of retrying; the next reconcile applies the same revision again,
// which changes nothing.
func (r *SyncReconciler) rolloutAborted(sc *syncScope, revision string, aborts []string) (ctrl.Result, bool) {
	s := sc.sync
	sort.Strings(aborts)
	msg := fmt.Sprintf("revision %s: %s", revision, strings.Join(aborts, "; "))
	conditions.Set(s, gitopsv1.Healthy, metav1.ConditionFalse, gitopsv1.ReasonRolloutAborted, msg)
	r.failed(sc, revision, gitopsv1.ReasonRolloutAborted, errors.New(msg), true)
	return ctrl.Result{RequeueAfter: jitter(s.Spec.Interval.Duration)}, true
}

// indexInventory indexes Syncs by the keys of their inventory entries.
const indexInventory = ".status.inventory"

func inventoryKeys(o client.Object) []string {
	s, ok := o.(*gitopsv1.Sync)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(s.Status.Inventory))
	for _, e := range s.Status.Inventory {
		if e.Kind == deploymentGK.Kind {
			out = append(out, apply.Entry{APIVersion: e.APIVersion, Kind: e.Kind, Namespace: e.Namespace, Name: e.Name}.Key())
		}
	}
	return out
}

// rolloutSyncs maps a Rollout to the Syncs whose inventory holds the
// Deployment it targets.
func (r *SyncReconciler) rolloutSyncs(ctx context.Context, o client.Object) []reconcile.Request {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	name, _, _ := unstructured.NestedString(u.Object, "spec", "targetRef", "name")
	if name == "" {
		return nil
	}
	key := apply.Entry{APIVersion: "apps/v1", Kind: deploymentGK.Kind, Namespace: u.GetNamespace(), Name: name}.Key()
	return r.listBy(ctx, indexInventory, key)
}

// rolloutVerdictChanged passes Rollout updates that change what a Sync
// reports: its Ready condition, or whether (and what) it aborted. Steps in
// between wake no Sync; one that waits for health polls.
type rolloutVerdictChanged struct{ predicate.Funcs }

func (rolloutVerdictChanged) Update(e event.UpdateEvent) bool {
	o, ok1 := e.ObjectOld.(*unstructured.Unstructured)
	n, ok2 := e.ObjectNew.(*unstructured.Unstructured)
	if !ok1 || !ok2 {
		return false
	}
	ready := func(u *unstructured.Unstructured) string {
		list, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range list {
			if m, ok := c.(map[string]any); ok && m["type"] == "Ready" {
				return fmt.Sprint(m["status"], "/", m["reason"])
			}
		}
		return ""
	}
	aborted := func(u *unstructured.Unstructured) string {
		h, _, _ := unstructured.NestedString(u.Object, "status", "aborted", "revision", "podTemplateHash")
		return h
	}
	return ready(o) != ready(n) || aborted(o) != aborted(n)
}

package inputs

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
)

// KeepRolloutFields changes desired, an object about to be applied from Git
// over live (nil when there is none), so that the apply keeps what a Rollout
// wrote in fields Git also sets: the weighted backendRefs of an HTTPRoute
// and the pod-template-hash key of a Service's selector. Both are fields the
// API server replaces whole on apply (a list of rules, an atomic map), so
// without this every apply of an unchanged object would undo the Rollout's
// traffic split until it set it again. The Sync controller calls it before
// each apply and `strata diff` before each dry run, so neither reports the
// Rollout's fields as drift.
func KeepRolloutFields(live, desired *unstructured.Unstructured) {
	switch desired.GroupVersionKind().GroupKind() {
	case httpRouteGK:
		keepRolloutBackends(live, desired)
	case serviceGK:
		keepRolloutSelector(live, desired)
	}
}

var (
	httpRouteGK = schema.GroupKind{Group: "gateway.networking.k8s.io", Kind: "HTTPRoute"}
	serviceGK   = schema.GroupKind{Kind: "Service"}
)

// keepRolloutSelector keeps, in a Service about to be applied, the
// pod-template-hash key a blue-green Rollout put in the live Service's
// selector. The selector is an atomic map for server-side apply (Kubernetes
// #97989): Git's selector, applied with force, would replace the Rollout's
// whole, and until the Rollout set its key again the active Service would
// send traffic to every pod of the app, the unverified preview's too (Argo
// Rollouts #3437 is the same fight between Argo CD's server-side apply and
// its Rollouts). With the key kept, the Sync and the Rollout apply the same
// selector and own it together.
func keepRolloutSelector(live, o *unstructured.Unstructured) {
	if live == nil || !writtenByRollout(live) {
		return
	}
	hash, ok, _ := unstructured.NestedString(live.Object, "spec", "selector", deliveryv1.PodTemplateHashLabel)
	if !ok || hash == "" {
		return
	}
	sel, found, err := unstructured.NestedMap(o.Object, "spec", "selector")
	if err != nil || !found || len(sel) == 0 {
		// No selector in Git: the Service's endpoints are someone
		// else's business, and a hash alone would select other apps'
		// pods of the same template.
		return
	}
	if _, set := sel[deliveryv1.PodTemplateHashLabel]; set {
		return
	}
	sel[deliveryv1.PodTemplateHashLabel] = hash
	_ = unstructured.SetNestedMap(o.Object, sel, "spec", "selector")
}

// keepRolloutBackends keeps, in an HTTPRoute about to be applied, the
// weighted backendRefs a Rollout put in place of a Service: where the live
// route's rule has `<svc>-stable` and `<svc>-canary` refs that a Rollout
// wrote and the same rule in Git refers to `<svc>`, Git's ref gives way to
// the live pair. Rules are a list the API server replaces whole, so without
// this every apply of an unchanged route would send all traffic back to
// `<svc>` until the Rollout set its weights again.
func keepRolloutBackends(live, o *unstructured.Unstructured) {
	if live == nil || !writtenByRollout(live) {
		return
	}
	liveRules, _, _ := unstructured.NestedSlice(live.Object, "spec", "rules")
	rules, _, _ := unstructured.NestedSlice(o.Object, "spec", "rules")
	if len(rules) == 0 || len(liveRules) != len(rules) {
		return
	}
	changed := false
	for i := range rules {
		rm, ok1 := rules[i].(map[string]any)
		lm, ok2 := liveRules[i].(map[string]any)
		if !ok1 || !ok2 {
			continue
		}
		liveRefs, _ := lm["backendRefs"].([]any)
		byName := map[string]any{}
		for _, r := range liveRefs {
			if m, ok := r.(map[string]any); ok {
				if n, _ := m["name"].(string); n != "" {
					byName[n] = m
				}
			}
		}
		refs, _ := rm["backendRefs"].([]any)
		var out []any
		for _, r := range refs {
			m, ok := r.(map[string]any)
			n, _ := m["name"].(string)
			stable, hasStable := byName[n+"-stable"]
			canary, hasCanary := byName[n+"-canary"]
			if !ok || n == "" || !hasStable || !hasCanary {
				out = append(out, r)
				continue
			}
			out = append(out, stable, canary)
			changed = true
		}
		rm["backendRefs"] = out
		rules[i] = rm
	}
	if changed {
		_ = unstructured.SetNestedSlice(o.Object, rules, "spec", "rules")
	}
}

// writtenByRollout reports whether a Rollout's field manager wrote the
// object.
func writtenByRollout(u *unstructured.Unstructured) bool {
	for _, mf := range u.GetManagedFields() {
		if strings.HasPrefix(mf.Manager, deliveryv1.RolloutFieldManagerPrefix) {
			return true
		}
	}
	return false
}

package health

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// Status is an object's health, with kstatus's names.
type Status string

// The statuses.
const (
	// Current: the object has reached its desired state.
	Current Status = "Current"
	// InProgress: the object is getting there (or waits for its controller).
	InProgress Status = "InProgress"
	// Failed: the object will not get there without a change.
	Failed Status = "Failed"
	// Terminating: the object is being deleted.
	Terminating Status = "Terminating"
	// NotFound: the object does not exist.
	NotFound Status = "NotFound"
	// Unknown: the object's status could not be read (a malformed field).
	Unknown Status = "Unknown"
)

// Result is a status with a message saying why.
type Result struct {
	Status  Status
	Message string
}

// Ready reports whether the object is Current.
func (r Result) Ready() bool { return r.Status == Current }

// Compute returns the health of u; nil means the object does not exist.
//
// The answer is kstatus's, except where kstatus is silent:
//   - Composite resources, claims and managed resources (objects with a
//     Synced condition, or a spec.compositionRef, compositionSelector,
//     compositionRevisionRef, resourceRefs, resourceRef, forProvider or
//     providerConfigRef) are Current only when their Ready
//     condition is True; Stalled=True fails them; no Ready condition yet
//     waits. kstatus would call such an object Current before its
//     controller has written any condition.
//   - A Job is Current only when its Complete condition is True (kstatus
//     calls a running Job Current); Failed=True fails it.
//   - A Rollout (delivery.strata.dev) is Current only when its Ready
//     condition is True: a canary between steps, paused or aborted is not,
//     and Stalled=True (an abort that only a new revision fixes) fails it.
//     A Sync that applies a Deployment a Rollout targets takes this as the
//     Deployment's health.
func Compute(u *unstructured.Unstructured) (out Result) {
	if u == nil {
		return Result{Status: NotFound, Message: "not found"}
	}
	res, err := compute(u)
	if err != nil {
		return Result{Status: Unknown, Message: fmt.Sprintf("cannot compute status: %v", err)}
	}
	out = Result{Status: Status(res.Status.String()), Message: res.Message}
	switch out.Status {
	case Terminating, Failed:
		return out
	}
	if generationNotObserved(res) {
		return out
	}
	switch {
	case isComposite(u), isRollout(u):
		return byReady(u)
	case isJob(u):
		return job(u, out)
	}
	return out
}

// compute is kstatus.Compute, turning a panic on a malformed object (kstatus
// asserts the types of some status fields) into an error.
func compute(u *unstructured.Unstructured) (res *kstatus.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, fmt.Errorf("malformed object: %v", r)
		}
	}()
	return kstatus.Compute(u)
}

// generationNotObserved reports whether kstatus decided InProgress because
// status.observedGeneration lags metadata.generation.
func generationNotObserved(res *kstatus.Result) bool {
	if res.Status != kstatus.InProgressStatus {
		return false
	}
	for _, c := range res.Conditions {
		if c.Type == kstatus.ConditionReconciling && c.Reason == "LatestGenerationNotObserved" {
			return true
		}
	}
	return false
}

type condition struct{ status, reason, message string }

func conditionsOf(u *unstructured.Unstructured) map[string]condition {
	out := map[string]condition{}
	list, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range list {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		s := func(k string) string { v, _ := m[k].(string); return v }
		out[s("type")] = condition{status: s("status"), reason: s("reason"), message: s("message")}
	}
	return out
}

// compositeSpecFields are spec fields only composite resources and claims
// (reserved by the XRD schema) and managed resources (forProvider,
// providerConfigRef) carry: objects whose controller reports Ready.
var compositeSpecFields = []string{"compositionRef", "compositionSelector", "compositionRevisionRef", "resourceRefs", "resourceRef", "forProvider", "providerConfigRef"}

func isComposite(u *unstructured.Unstructured) bool {
	if _, ok := conditionsOf(u)["Synced"]; ok {
		return true
	}
	spec, ok := u.Object["spec"].(map[string]any)
	if !ok {
		return false
	}
	for _, f := range compositeSpecFields {
		if _, ok := spec[f]; ok {
			return true
		}
	}
	return false
}

func byReady(u *unstructured.Unstructured) Result {
	conds := conditionsOf(u)
	if c, ok := conds["Stalled"]; ok && c.status == "True" {
		return Result{Status: Failed, Message: describe(c)}
	}
	c, ok := conds["Ready"]
	switch {
	case !ok:
		return Result{Status: InProgress, Message: "waiting for the Ready condition"}
	case c.status == "True":
		return Result{Status: Current, Message: "Resource is Ready"}
	}
	return Result{Status: InProgress, Message: describe(c)}
}

// RolloutGroup and RolloutKind name Strata's Rollout kind.
const (
	RolloutGroup = "delivery.strata.dev"
	RolloutKind  = "Rollout"
)

func isRollout(u *unstructured.Unstructured) bool {
	gvk := u.GroupVersionKind()
	return gvk.Group == RolloutGroup && gvk.Kind == RolloutKind
}

func isJob(u *unstructured.Unstructured) bool {
	gvk := u.GroupVersionKind()
	return gvk.Group == "batch" && gvk.Kind == "Job"
}

func job(u *unstructured.Unstructured, ks Result) Result {
	conds := conditionsOf(u)
	if c, ok := conds["Failed"]; ok && c.status == "True" {
		return Result{Status: Failed, Message: ks.Message}
	}
	if c, ok := conds["Complete"]; ok && c.status == "True" {
		return ks
	}
	return Result{Status: InProgress, Message: "Job is not complete: " + ks.Message}
}

// describe is a condition's message, else its reason.
func describe(c condition) string {
	switch {
	case c.message != "":
		return c.message
	case c.reason != "":
		return c.reason
	}
	return "not ready"
}

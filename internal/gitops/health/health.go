package health

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Status is an object's kstatus.
type Status string

// The statuses, as kstatus names them.
const (
	Current     Status = "Current"
	InProgress  Status = "InProgress"
	Failed      Status = "Failed"
	Terminating Status = "Terminating"
	NotFound    Status = "NotFound"
)

// Result is a status with a message saying why.
type Result struct {
	Status  Status
	Message string
}

func inProgress(format string, a ...any) Result {
	return Result{Status: InProgress, Message: fmt.Sprintf(format, a...)}
}

func failed(format string, a ...any) Result {
	return Result{Status: Failed, Message: fmt.Sprintf(format, a...)}
}

var current = Result{Status: Current, Message: "current"}

type condition struct {
	Type, Status, Reason, Message string
}

func conditionsOf(u *unstructured.Unstructured) map[string]condition {
	out := map[string]condition{}
	list, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range list {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		s := func(k string) string { v, _ := m[k].(string); return v }
		out[s("type")] = condition{Type: s("type"), Status: s("status"), Reason: s("reason"), Message: s("message")}
	}
	return out
}

func integer(u *unstructured.Unstructured, fields ...string) (int64, bool) {
	v, ok, _ := unstructured.NestedFieldNoCopy(u.Object, fields...)
	if !ok {
		return 0, false
	}
	switch n := v.(type) {
	case int64:
		return n, true
	case float64:
		return int64(n), true
	case int:
		return int64(n), true
	}
	return 0, false
}

// Compute returns the kstatus of u.
func Compute(u *unstructured.Unstructured) Result {
	if u == nil {
		return Result{Status: NotFound, Message: "not found"}
	}
	if u.GetDeletionTimestamp() != nil {
		return Result{Status: Terminating, Message: "being deleted"}
	}
	gen, _ := integer(u, "metadata", "generation")
	if og, ok := integer(u, "status", "observedGeneration"); ok && og < gen {
		return inProgress("generation %d is not observed yet (observed %d)", gen, og)
	}
	conds := conditionsOf(u)
	if c, ok := conds["Stalled"]; ok && c.Status == "True" {
		return failed("stalled: %s", msgOr(c))
	}
	if c, ok := conds["Reconciling"]; ok && c.Status == "True" {
		return inProgress("reconciling: %s", msgOr(c))
	}
	gk := u.GroupVersionKind().GroupKind()
	switch gk.Group + "/" + gk.Kind {
	case "apps/Deployment":
		return deployment(u, conds)
	case "apps/StatefulSet":
		return statefulSet(u)
	case "apps/DaemonSet":
		return daemonSet(u)
	case "apps/ReplicaSet":
		return replicaSet(u)
	case "batch/Job":
		return job(u, conds)
	case "/Pod":
		return pod(u, conds)
	case "/PersistentVolumeClaim":
		if p, _, _ := unstructured.NestedString(u.Object, "status", "phase"); p != "Bound" {
			return inProgress("PVC is not Bound")
		}
		return current
	case "/Namespace":
		if p, _, _ := unstructured.NestedString(u.Object, "status", "phase"); p == "Terminating" {
			return Result{Status: Terminating, Message: "namespace is terminating"}
		}
		return current
	case "apiextensions.k8s.io/CustomResourceDefinition":
		if c, ok := conds["Established"]; !ok || c.Status != "True" {
			return inProgress("CRD is not established")
		}
		return current
	}
	// Generic: the Ready condition decides when there is one.
	if c, ok := conds["Ready"]; ok {
		if c.Status == "True" {
			return current
		}
		return inProgress("not ready: %s", msgOr(c))
	}
	return current
}

func msgOr(c condition) string {
	if c.Message != "" {
		return c.Message
	}
	if c.Reason != "" {
		return c.Reason
	}
	return c.Type
}

func replicasSpec(u *unstructured.Unstructured) int64 {
	if n, ok := integer(u, "spec", "replicas"); ok {
		return n
	}
	return 1
}

func deployment(u *unstructured.Unstructured, conds map[string]condition) Result {
	if c, ok := conds["Progressing"]; ok && c.Reason == "ProgressDeadlineExceeded" {
		return failed("progress deadline exceeded: %s", c.Message)
	}
	want := replicasSpec(u)
	updated, _ := integer(u, "status", "updatedReplicas")
	ready, _ := integer(u, "status", "readyReplicas")
	avail, _ := integer(u, "status", "availableReplicas")
	total, _ := integer(u, "status", "replicas")
	switch {
	case updated < want:
		return inProgress("updated: %d/%d", updated, want)
	case total > updated:
		return inProgress("pending termination: %d", total-updated)
	case avail < updated:
		return inProgress("available: %d/%d", avail, updated)
	case ready < updated:
		return inProgress("ready: %d/%d", ready, updated)
	}
	if c, ok := conds["Available"]; ok && c.Status != "True" {
		return inProgress("deployment is not available")
	}
	return current
}

func statefulSet(u *unstructured.Unstructured) Result {
	want := replicasSpec(u)
	ready, _ := integer(u, "status", "readyReplicas")
	cur, _ := integer(u, "status", "currentReplicas")
	if ready < want {
		return inProgress("ready: %d/%d", ready, want)
	}
	upd, _, _ := unstructured.NestedString(u.Object, "status", "updateRevision")
	curRev, _, _ := unstructured.NestedString(u.Object, "status", "currentRevision")
	if upd != "" && upd != curRev {
		return inProgress("rolling out: %d/%d current", cur, want)
	}
	return current
}

func daemonSet(u *unstructured.Unstructured) Result {
	want, _ := integer(u, "status", "desiredNumberScheduled")
	avail, _ := integer(u, "status", "numberAvailable")
	upd, _ := integer(u, "status", "updatedNumberScheduled")
	if upd < want || avail < want {
		return inProgress("available: %d/%d", avail, want)
	}
	return current
}

func replicaSet(u *unstructured.Unstructured) Result {
	want := replicasSpec(u)
	avail, _ := integer(u, "status", "availableReplicas")
	if avail < want {
		return inProgress("available: %d/%d", avail, want)
	}
	return current
}

func job(u *unstructured.Unstructured, conds map[string]condition) Result {
	if c, ok := conds["Failed"]; ok && c.Status == "True" {
		return failed("job failed: %s", msgOr(c))
	}
	if c, ok := conds["Complete"]; ok && c.Status == "True" {
		return current
	}
	return inProgress("job is not complete")
}

func pod(u *unstructured.Unstructured, conds map[string]condition) Result {
	phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	switch phase {
	case "Succeeded":
		return current
	case "Failed":
		return failed("pod failed")
	case "Running":
		if c, ok := conds["Ready"]; ok && c.Status == "True" {
			return current
		}
	}
	return inProgress("pod is %s", phaseOr(phase))
}

func phaseOr(p string) string {
	if p == "" {
		return "pending"
	}
	return p
}

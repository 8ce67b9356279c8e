package health

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/kit/podtemplate"
)

// Names from the Rollout API (apis/delivery/v1alpha1) that decide the
// health of a Deployment a Rollout rolls out.
const (
	// RolloutAnnotation is set by the Rollout controller on the Deployment
	// it targets; its value is the Rollout's name (same namespace).
	RolloutAnnotation = deliveryv1.RolloutAnnotation
	// GitRevisionAnnotation is set by a Sync on a Deployment's metadata: the
	// Git revision its template came from.
	GitRevisionAnnotation = deliveryv1.GitRevisionAnnotation
	// ReasonRolloutAborted is the Rollout's Ready reason for an aborted
	// revision, and the reason a Sync reports it with.
	ReasonRolloutAborted = deliveryv1.ReasonRolloutAborted
)

// RolloutTarget is the health of Deployment dep that Rollout ro rolls out
// (dep carries RolloutAnnotation): dep is paused and never reports
// progress, so the Rollout's status about dep's current pod template
// decides. aborted is set when the Rollout aborted that template: the
// result is Failed and its message names the Rollout and both revisions.
//
//   - The template is the Rollout's canary: InProgress, with what the
//     Rollout does or waits for.
//   - The template is its stable revision and no canary is in progress: the
//     Rollout's Ready (Current only when Ready=True, as Compute says for a
//     Rollout).
//   - The Rollout has not seen the template yet (a Sync just applied it):
//     InProgress, never the Ready of the revision before.
//   - The Rollout is Stalled for another reason (its target is refused, it
//     may not act): Failed with its message.
//
// The Deployment's current template is named by its hash
// (podtemplate.Hash), by current (the pod-template-hash of a ReplicaSet the
// Deployment controller made of that template, which carries the
// controller's own hash), and, for the stable revision, by the Git revision
// the Sync annotated the Deployment with.
func RolloutTarget(dep, ro *unstructured.Unstructured, current ...string) (res Result, aborted bool) {
	name := "Rollout " + ro.GetNamespace() + "/" + ro.GetName()
	d := &appsv1.Deployment{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(dep.Object, d); err != nil {
		return Result{Status: Unknown, Message: fmt.Sprintf("cannot read Deployment %s/%s: %v", dep.GetNamespace(), dep.GetName(), err)}, false
	}
	hash := podtemplate.Hash(&d.Spec.Template)
	isCurrent := func(h string) bool {
		if h == "" {
			return false
		}
		if h == hash {
			return true
		}
		for _, c := range current {
			if h == c {
				return true
			}
		}
		return false
	}
	git := d.Annotations[GitRevisionAnnotation]
	rev := func(path ...string) (hash, git string, ok bool) {
		m, found, _ := unstructured.NestedMap(ro.Object, append([]string{"status"}, path...)...)
		if !found {
			return "", "", false
		}
		hash, _ = m["podTemplateHash"].(string)
		git, _ = m["gitRevision"].(string)
		return hash, git, true
	}
	if h, git, ok := rev("aborted", "revision"); ok && isCurrent(h) {
		sh, sgit, _ := rev("aborted", "stable")
		reason, _, _ := unstructured.NestedString(ro.Object, "status", "aborted", "reason")
		msg, _, _ := unstructured.NestedString(ro.Object, "status", "aborted", "message")
		why := reason
		if msg != "" {
			why += ": " + msg
		}
		return Result{Status: Failed, Message: fmt.Sprintf("%s aborted revision %s (%s); all traffic stays on stable revision %s",
			name, revisionName(h, git), why, revisionName(sh, sgit))}, true
	}
	own := Compute(ro)
	ch, _, hasCanary := rev("canaryRevision")
	sh, sgit, hasStable := rev("stableRevision")
	switch {
	case own.Status == InProgress && generationLags(ro):
		return Result{Status: InProgress, Message: name + ": " + own.Message}, false
	case hasCanary && isCurrent(ch):
		if own.Status == Failed {
			return own, false
		}
		return Result{Status: InProgress, Message: name + " is rolling out revision " + hash + ": " + rolloutMessage(ro, own)}, false
	case hasStable && !hasCanary && (isCurrent(sh) || (git != "" && sgit == git)):
		if own.Status == Current {
			return Result{Status: Current, Message: name + ": " + rolloutMessage(ro, own)}, false
		}
		return Result{Status: own.Status, Message: name + ": " + rolloutMessage(ro, own)}, false
	}
	if own.Status == Failed && !isAbortedCondition(ro) {
		// Refused or denied whatever the template: only the user fixes it.
		return own, false
	}
	return Result{Status: InProgress, Message: fmt.Sprintf("waiting for %s to take Deployment %s/%s's template %s", name, dep.GetNamespace(), dep.GetName(), revisionName(hash, git))}, false
}

// rolloutMessage is what the Rollout says it does: status.message, else
// its health message.
func rolloutMessage(ro *unstructured.Unstructured, own Result) string {
	if m, _, _ := unstructured.NestedString(ro.Object, "status", "message"); m != "" {
		return m
	}
	return own.Message
}

func generationLags(u *unstructured.Unstructured) bool {
	og, found, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	return !found || og != u.GetGeneration()
}

func isAbortedCondition(u *unstructured.Unstructured) bool {
	for _, t := range []string{"Ready", "Stalled"} {
		if c, ok := conditionsOf(u)[t]; ok && c.reason == ReasonRolloutAborted {
			return true
		}
	}
	return false
}

// revisionName is "GIT (pod-template-hash HASH)", or the hash alone when
// the Git revision is not known.
func revisionName(hash, git string) string {
	switch {
	case git == "":
		return hash
	case hash == "":
		return git
	}
	return git + " (pod-template-hash " + hash + ")"
}

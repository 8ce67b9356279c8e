// Package rollout runs Rollouts: it keeps the user's Deployment paused so a
// template change does not roll every pod, runs the new template as a canary
// (or preview) ReplicaSet it owns beside the Deployment's stable one, scales
// it step by step (or switches Service selectors, or HTTPRoute weights),
// gates the steps with AnalysisRuns, and at the end hands the ReplicaSet to
// the Deployment and lets the Deployment controller finish, so the HPA and
// the Deployment's name, labels and Service stay what Git says. An abort
// scales the canary to zero and leaves every pod and all traffic on stable.
// Everything it reads and writes in a tenant's namespace it does as the
// Rollout's service account. It knows nothing about Syncs or Git: a Sync
// learns what it needs from the Deployment's annotation and the Rollout's
// status (apis/delivery/v1alpha1).
package rollout

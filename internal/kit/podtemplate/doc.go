// Package podtemplate names a revision of a workload's pod template: the
// hash a Rollout labels that revision's pods with (pod-template-hash), which
// a Sync computes too to tell which revision a Rollout's status is about. It
// is pure: no client, no knowledge of who rolls the template out.
package podtemplate

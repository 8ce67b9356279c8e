// Package health computes an object's status by kstatus rules (the
// convention of sigs.k8s.io/cli-utils/pkg/kstatus, which is not reachable
// from this build, re-implemented for the kinds Strata applies): Current,
// InProgress or Failed, from observedGeneration, the Ready/Reconciling/
// Stalled conditions, and the built-in workload kinds. It is pure: it reads
// unstructured objects and knows nothing about clients.
package health

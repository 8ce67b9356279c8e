// Package health is the one place Strata decides whether an object is ready:
// a composition's default readiness, a Sync's health checks and dependsOn,
// and `strata trace` all call Compute. It answers with kstatus
// (sigs.k8s.io/cli-utils/pkg/kstatus/status) and adds Strata's own rules only
// where kstatus is silent: composite resources and claims are judged by their
// Ready condition, and a Job is ready when it has completed. It is pure: it
// reads unstructured objects and knows nothing about clients.
package health

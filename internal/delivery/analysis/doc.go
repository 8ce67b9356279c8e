// Package analysis is the pure logic of an AnalysisRun: substituting
// arguments into queries and URLs (escaped for where they land), taking a
// Prometheus or web measurement over HTTP, judging a value with the metric's
// CEL conditions and noData policy, and deciding a metric's phase from its
// measurements by the limits. It has no Kubernetes client and knows nothing
// about who created a run (a Sync, a rollout, a promotion).
package analysis

// Package reconcile holds the requeue, user-error and stale-read helpers
// every Strata controller shares: one Jitter for periodic requeues,
// Terminal/ReasonOf for errors only the user can fix (controller-runtime does
// not retry them, and the controller marks the object Stalled with the reason
// given), IsStale for a write refused because its read was old (retried
// from a fresh read, not reported), and RateLimiter, the retry delays of
// every controller's queue (per object, 5 ms doubling up to a minute; no
// limit shared by all objects). It knows nothing about any subsystem,
// object kind or condition type.
package reconcile

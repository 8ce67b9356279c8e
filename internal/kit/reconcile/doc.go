// Package reconcile holds the requeue and user-error helpers every Strata
// controller shares: one Jitter for periodic requeues, and Terminal/ReasonOf
// for errors only the user can fix (controller-runtime does not retry them,
// and the controller marks the object Stalled with the reason given). It
// knows nothing about any subsystem, object kind or condition type.
package reconcile

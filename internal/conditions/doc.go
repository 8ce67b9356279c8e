// Package conditions holds the condition types and reasons every Strata kind
// reports, and small helpers that keep objects kstatus-compliant: Ready is set
// (False) from the first reconcile, Reconciling while work is in progress,
// Stalled when only the user can fix it. It knows nothing about specific kinds.
package conditions

package conditions

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types shared by Strata kinds.
const (
	// Ready is True when the object is fully available.
	Ready = "Ready"
	// Synced is True when the last reconcile succeeded (composition and managed kinds).
	Synced = "Synced"
	// Reconciling is True while the controller is working towards the desired state.
	Reconciling = "Reconciling"
	// Stalled is True when progress needs a change by the user.
	Stalled = "Stalled"
)

// Reasons shared by Strata kinds. Kinds document further reasons next to
// their own types.
const (
	ReasonAvailable            = "Available"
	ReasonCreating             = "Creating"
	ReasonDeleting             = "Deleting"
	ReasonUnavailable          = "Unavailable"
	ReasonReconcileSuccess     = "ReconcileSuccess"
	ReasonReconcileError       = "ReconcileError"
	ReasonProgressing          = "Progressing"
	ReasonDependencyNotReady   = "DependencyNotReady"
	ReasonHealthCheckFailed    = "HealthCheckFailed"
	ReasonCompositionInvalid   = "CompositionInvalid"
	ReasonReconciliationPaused = "ReconciliationPaused"
)

// Setter is an object with conditions and a generation, as every Strata kind is.
type Setter interface {
	GetGeneration() int64
	GetConditions() *[]metav1.Condition
}

// Set sets a condition, stamping the object's generation. The transition time
// changes only when the status does, so repeated reconciles do not flap.
func Set(o Setter, typ string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(o.GetConditions(), metav1.Condition{
		Type:               typ,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: o.GetGeneration(),
	})
}

// Get returns a condition by type, or nil.
func Get(o Setter, typ string) *metav1.Condition {
	return meta.FindStatusCondition(*o.GetConditions(), typ)
}

// IsTrue reports whether the condition is present and True.
func IsTrue(o Setter, typ string) bool {
	return meta.IsStatusConditionTrue(*o.GetConditions(), typ)
}

// Remove deletes a condition.
func Remove(o Setter, typ string) {
	meta.RemoveStatusCondition(o.GetConditions(), typ)
}

// MarkReady marks the object Ready and done: Reconciling and Stalled go away.
func MarkReady(o Setter, reason, message string) {
	Set(o, Ready, metav1.ConditionTrue, reason, message)
	Remove(o, Reconciling)
	Remove(o, Stalled)
}

// MarkProgressing marks the object not yet Ready while work goes on.
func MarkProgressing(o Setter, reason, message string) {
	Set(o, Ready, metav1.ConditionFalse, reason, message)
	Set(o, Reconciling, metav1.ConditionTrue, reason, message)
	Remove(o, Stalled)
}

// MarkStalled marks the object not Ready until the user changes something.
func MarkStalled(o Setter, reason, message string) {
	Set(o, Ready, metav1.ConditionFalse, reason, message)
	Set(o, Stalled, metav1.ConditionTrue, reason, message)
	Remove(o, Reconciling)
}

// MarkFailed marks the object not Ready after a transient error that the
// controller retries by itself.
func MarkFailed(o Setter, reason, message string) {
	Set(o, Ready, metav1.ConditionFalse, reason, message)
	Remove(o, Reconciling)
	Remove(o, Stalled)
}

// EnsureInitialized sets Ready=False (reason Creating) on an object that has
// no Ready condition yet, so kstatus never reads it as healthy too early.
func EnsureInitialized(o Setter) {
	if Get(o, Ready) == nil {
		MarkProgressing(o, ReasonCreating, "reconciliation has started")
	}
}

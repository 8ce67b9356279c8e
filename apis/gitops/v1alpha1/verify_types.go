package v1alpha1

import (
	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
)

// Verification reasons (condition Ready of a Sync).
const (
	// ReasonVerifying: the revision is applied and healthy and its
	// AnalysisRun is measuring it.
	ReasonVerifying = "Verifying"
	// ReasonVerificationFailed: the revision's AnalysisRun ended Failed,
	// Inconclusive or Error; the message names the metric and value (and
	// the revision rolled back to, with rollback.onVerificationFailure).
	ReasonVerificationFailed = "VerificationFailed"
)

// Event reasons of Sync verification.
const (
	EventVerified           = "Verified"
	EventVerificationFailed = "VerificationFailed"
)

// LabelVerifiedRevision is set on a Sync's AnalysisRun to the hash of the
// revision it verifies.
const (
	LabelVerifySync = "gitops.strata.dev/verify-sync"
)

// Verify runs an analysis after each revision is applied and healthy.
type Verify struct {
	// Templates of the analysis (AnalysisTemplates in the Sync's namespace,
	// or ClusterAnalysisTemplates).
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Templates []deliveryv1.TemplateRef `json:"templates"`
	// Args given to the templates. Besides these, the run gets `revision`
	// (the source revision under verification) unless set here.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Args []deliveryv1.Argument `json:"args,omitempty"`
}

// VerificationStatus is the analysis of the last revision verified or being
// verified.
type VerificationStatus struct {
	// Revision under verification.
	// +required
	Revision string `json:"revision"`
	// RunName is the AnalysisRun in the Sync's namespace.
	// +required
	RunName string `json:"runName"`
	// Phase of the run: Running, Successful, Failed, Inconclusive, Error.
	// +optional
	Phase string `json:"phase,omitempty"`
	// Message of the run's verdict, naming metric and value.
	// +optional
	Message string `json:"message,omitempty"`
}

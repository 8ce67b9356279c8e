package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Phases of a Promotion.
const (
	// PromotionPending: waiting for soak, approval, a window or its turn.
	PromotionPending = "Pending"
	// PromotionPromoting: being written and applied.
	PromotionPromoting = "Promoting"
	// PromotionSucceeded: the stage's Sync applied the revision.
	PromotionSucceeded = "Succeeded"
	// PromotionRejected: an Approval rejected the revision.
	PromotionRejected = "Rejected"
	// PromotionWithdrawn: the revision is no longer verified upstream.
	PromotionWithdrawn = "Withdrawn"
	// PromotionSuperseded: a newer revision replaced it
	// (spec.promotion.supersedePending) or the stage already runs it.
	PromotionSuperseded = "Superseded"
	// PromotionFailed: the revision cannot be promoted (not verified
	// upstream, unknown stage); the message says why.
	PromotionFailed = "Failed"
)

// Promotion reasons (condition Ready), besides the Stage's waiting reasons.
const (
	// ReasonPromotionSucceeded: the revision is in the stage.
	ReasonPromotionSucceeded = "Succeeded"
	// ReasonNotVerifiedUpstream: the revision is not among the source
	// stage's verified revisions.
	ReasonNotVerifiedUpstream = "NotVerifiedUpstream"
	// ReasonWithdrawn: the revision's verification upstream failed after it
	// was verified.
	ReasonWithdrawn = "Withdrawn"
	// ReasonSuperseded: see PromotionSuperseded.
	ReasonSuperseded = "Superseded"
	// ReasonStageNotFound: spec.stage names no Stage in the namespace.
	ReasonStageNotFound = "StageNotFound"
	// ReasonOverrideNotPermitted: spec.overrideWindows is set but
	// spec.requestedBy lacks the promotions/override permission; the
	// promotion waits for the window like any other.
	ReasonOverrideNotPermitted = "OverrideNotPermitted"
	// ReasonQueued: another promotion of the stage goes first.
	ReasonQueued = "Queued"
)

// LabelRevision is set on Promotions and Approvals Strata creates, to the
// revision (commit SHA).
const LabelRevision = "delivery.strata.dev/revision"

// RequestUser is who made an API request, as the API server saw it. The
// ValidatingAdmissionPolicy Strata installs requires it to equal
// request.userInfo on create.
type RequestUser struct {
	// Username of the requester.
	// +required
	// +kubebuilder:validation:MinLength=1
	Username string `json:"username"`
	// Groups of the requester.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	Groups []string `json:"groups,omitempty"`
}

// PromotionSpec is a request to move a revision into a stage.
type PromotionSpec struct {
	// Stage in the Promotion's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	Stage string `json:"stage"`
	// Revision (commit SHA, at least 7 hex digits) verified upstream.
	// +required
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{7,40}$`
	Revision string `json:"revision"`
	// OverrideWindows promotes through a deny window (or outside every
	// allow window) when requestedBy has the `override` verb on
	// `promotions` in this namespace; the override is recorded.
	// +optional
	OverrideWindows bool `json:"overrideWindows,omitempty"`
	// RequestedBy is who created the Promotion (pinned to the request's
	// user by Strata's admission policy); the override permission is
	// checked for this identity.
	// +optional
	RequestedBy *RequestUser `json:"requestedBy,omitempty"`
}

// PromotionStatus is the promotion's progress.
type PromotionStatus struct {
	// ObservedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, Reconciling, Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Phase: Pending, Promoting, Succeeded, Rejected, Withdrawn,
	// Superseded, Failed.
	// +optional
	Phase string `json:"phase,omitempty"`
	// Revision resolved to the full commit SHA.
	// +optional
	Revision string `json:"revision,omitempty"`
	// WaitingFor while Pending: Approval, Window, Soak, Verification.
	// +optional
	WaitingFor string `json:"waitingFor,omitempty"`
	// ApprovedBy lists the approvers counted so far.
	// +optional
	ApprovedBy []string `json:"approvedBy,omitempty"`
	// OverriddenBy names who overrode a window, when they did.
	// +optional
	OverriddenBy string `json:"overriddenBy,omitempty"`
	// Commit pushed by write-back.
	// +optional
	Commit string `json:"commit,omitempty"`
	// StartedAt is when the write started.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// CompletedAt is when it reached a final phase.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
}

// Promotion asks to move a revision into a stage; Strata creates them for
// automatic promotions and people create them (strata promote). The
// Stage's controller serializes them per stage.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=strata
// +kubebuilder:printcolumn:name="STAGE",type=string,JSONPath=`.spec.stage`
// +kubebuilder:printcolumn:name="REVISION",type=string,JSONPath=`.spec.revision`
// +kubebuilder:printcolumn:name="PHASE",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type Promotion struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a Promotion's spec is immutable"
	Spec PromotionSpec `json:"spec"`
	// +optional
	Status PromotionStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions.
func (p *Promotion) GetConditions() *[]metav1.Condition { return &p.Status.Conditions }

// +kubebuilder:object:root=true

// PromotionList is a list of Promotions.
type PromotionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Promotion `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Promotion{}, &PromotionList{})
}

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Approval decisions.
const (
	DecisionApprove = "Approve"
	DecisionReject  = "Reject"
)

// Approval reasons (condition Counted).
const (
	// ConditionCounted is True when the Stage's controller counted the
	// Approval for its revision, False with a reason when it did not.
	ConditionCounted = "Counted"
	// ReasonCounted: the approval or rejection was counted.
	ReasonCounted = "Counted"
	// ReasonNotAnApprover: the approver is not in the stage's approvers
	// (users or groups).
	ReasonNotAnApprover = "NotAnApprover"
	// ReasonSelfApproval: the approver authored the commit; the approval
	// counts only with another approver's (four-eyes rule).
	ReasonSelfApproval = "SelfApproval"
	// ReasonRevisionNotPending: the revision is not waiting for this stage
	// (yet, or any more).
	ReasonRevisionNotPending = "RevisionNotPending"
)

// ApprovalSpec is one person's decision on one revision for one stage.
type ApprovalSpec struct {
	// Stage in the Approval's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	Stage string `json:"stage"`
	// Revision (commit SHA, at least 7 hex digits).
	// +required
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{7,40}$`
	Revision string `json:"revision"`
	// Decision: Approve or Reject. One Reject blocks the revision for the
	// stage.
	// +required
	// +kubebuilder:validation:Enum=Approve;Reject
	Decision string `json:"decision"`
	// Comment of the approver.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Comment string `json:"comment,omitempty"`
	// Approver is the username of who made the Approval; Strata's admission
	// policy requires it to equal the request's user.
	// +required
	// +kubebuilder:validation:MinLength=1
	Approver string `json:"approver"`
	// Groups of the approver; Strata's admission policy requires them to
	// equal the request's groups. Group approvers are matched against them.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	Groups []string `json:"groups,omitempty"`
}

// ApprovalStatus says whether the Approval counted.
type ApprovalStatus struct {
	// ObservedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Counted.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Approval records a person's decision on a revision for a stage. It is
// immutable; RBAC on approvals decides who may create them and the Stage's
// approvers which ones count.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=strata
// +kubebuilder:printcolumn:name="STAGE",type=string,JSONPath=`.spec.stage`
// +kubebuilder:printcolumn:name="REVISION",type=string,JSONPath=`.spec.revision`
// +kubebuilder:printcolumn:name="DECISION",type=string,JSONPath=`.spec.decision`
// +kubebuilder:printcolumn:name="APPROVER",type=string,JSONPath=`.spec.approver`
// +kubebuilder:printcolumn:name="COUNTED",type=string,JSONPath=`.status.conditions[?(@.type=="Counted")].status`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type Approval struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="an Approval is immutable"
	Spec ApprovalSpec `json:"spec"`
	// +optional
	Status ApprovalStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions.
func (a *Approval) GetConditions() *[]metav1.Condition { return &a.Status.Conditions }

// +kubebuilder:object:root=true

// ApprovalList is a list of Approvals.
type ApprovalList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Approval `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Approval{}, &ApprovalList{})
}

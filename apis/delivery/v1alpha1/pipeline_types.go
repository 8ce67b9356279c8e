package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PipelineDefaults apply to every Stage of the pipeline that does not set
// the field itself.
type PipelineDefaults struct {
	// Windows when promotions are allowed or denied.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Windows []PromotionWindow `json:"windows,omitempty"`
	// Approval gate.
	// +optional
	Approval *ApprovalPolicy `json:"approval,omitempty"`
	// RequiredSoakTime before promotion.
	// +optional
	RequiredSoakTime *metav1.Duration `json:"requiredSoakTime,omitempty"`
}

// PipelineSpec groups stages.
type PipelineSpec struct {
	// Description shown by `strata pipeline get`.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`
	// Stages in display order, as namespace/name or name (the Pipeline's
	// namespace). Stages name their pipeline with spec.pipeline; this list
	// only orders them.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Stages []string `json:"stages,omitempty"`
	// Defaults for the Stages of this pipeline in the Pipeline's namespace.
	// +optional
	Defaults *PipelineDefaults `json:"defaults,omitempty"`
}

// Pipeline is an optional grouping of Stages, for display and defaults.
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=strata
// +kubebuilder:printcolumn:name="STAGES",type=string,JSONPath=`.spec.stages`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type Pipeline struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec PipelineSpec `json:"spec,omitempty"`
}

// +kubebuilder:object:root=true

// PipelineList is a list of Pipelines.
type PipelineList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Pipeline `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Pipeline{}, &PipelineList{})
}

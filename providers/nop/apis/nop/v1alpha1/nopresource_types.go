package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	managedv1 "github.com/strata-dev/strata/internal/managed/apis/v1alpha1"
)

// ConditionAfter sets a condition once some time has passed since the
// resource was created.
type ConditionAfter struct {
	// Time after creation, a Go duration such as "5s".
	// +required
	Time metav1.Duration `json:"time"`
	// ConditionType to set, e.g. Ready.
	// +required
	// +kubebuilder:validation:MinLength=1
	ConditionType string `json:"conditionType"`
	// ConditionStatus to set.
	// +required
	// +kubebuilder:validation:Enum="True";"False";"Unknown"
	ConditionStatus metav1.ConditionStatus `json:"conditionStatus"`
	// ConditionReason to set; default "Nop".
	// +optional
	ConditionReason string `json:"conditionReason,omitempty"`
}

// NopParameters are the desired fields of a NopResource.
type NopParameters struct {
	// Fields are free-form values; the provider stores nothing.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	Fields *apiextensionsv1.JSON `json:"fields,omitempty"`
	// ConditionAfter sets conditions after some time. A Ready entry makes the
	// resource Ready only once its time has passed.
	// +optional
	ConditionAfter []ConditionAfter `json:"conditionAfter,omitempty"`
}

// NopObservation is what the nop provider observed.
type NopObservation struct {
	// Fields echoes spec.forProvider.fields.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	Fields *apiextensionsv1.JSON `json:"fields,omitempty"`
}

// NopResourceSpec is the desired state of a NopResource.
type NopResourceSpec struct {
	managedv1.ResourceSpec `json:",inline"`
	// ForProvider are the desired fields.
	// +optional
	ForProvider NopParameters `json:"forProvider,omitempty"`
	// InitProvider are fields used only at create.
	// +optional
	InitProvider NopParameters `json:"initProvider,omitempty"`
}

// NopResourceStatus is the observed state of a NopResource.
type NopResourceStatus struct {
	managedv1.ResourceStatus `json:",inline"`
	// AtProvider is the observed state.
	// +optional
	AtProvider NopObservation `json:"atProvider,omitempty"`
}

// NopResource is a managed resource that talks to nothing: it becomes Ready
// (optionally after a delay), publishes fixed connection details, and is used
// by tests and benchmarks of the engine.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories={strata,managed}
// +kubebuilder:printcolumn:name="READY",type="string",JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="SYNCED",type="string",JSONPath=".status.conditions[?(@.type=='Synced')].status"
// +kubebuilder:printcolumn:name="EXTERNAL-NAME",type="string",JSONPath=".metadata.annotations.strata\\.dev/external-name"
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
type NopResource struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec NopResourceSpec `json:"spec"`
	// +optional
	Status NopResourceStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions.
func (r *NopResource) GetConditions() *[]metav1.Condition { return &r.Status.Conditions }

// ManagedSpec returns the shared spec fields.
func (r *NopResource) ManagedSpec() *managedv1.ResourceSpec { return &r.Spec.ResourceSpec }

// ManagedStatus returns the shared status fields.
func (r *NopResource) ManagedStatus() *managedv1.ResourceStatus { return &r.Status.ResourceStatus }

// NopResourceList is a list of NopResources.
// +kubebuilder:object:root=true
type NopResourceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NopResource `json:"items"`
}

func init() {
	SchemeBuilder.Register(&NopResource{}, &NopResourceList{})
}

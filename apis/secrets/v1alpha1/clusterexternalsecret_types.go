package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClusterExternalSecret reasons (condition Ready).
const (
	// ReasonProvisioned: an ExternalSecret exists in every selected
	// namespace.
	ReasonProvisioned = "Provisioned"
	// ReasonPartiallyProvisioned: some namespaces failed (listed in
	// status.failedNamespaces), e.g. an ExternalSecret of the same name
	// that belongs to someone else.
	ReasonPartiallyProvisioned = "PartiallyProvisioned"
	// ReasonNotProvisioned: no namespace could be provisioned.
	ReasonNotProvisioned = "NotProvisioned"
)

// ExternalSecretMetadata is metadata of the stamped ExternalSecrets.
type ExternalSecretMetadata struct {
	// Annotations of each ExternalSecret.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// Labels of each ExternalSecret.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}

// ClusterExternalSecretSpec is the ExternalSecret and where to stamp it.
type ClusterExternalSecretSpec struct {
	// ExternalSecretSpec is the spec of every ExternalSecret.
	// +required
	ExternalSecretSpec ExternalSecretSpec `json:"externalSecretSpec"`
	// ExternalSecretName is the name of every ExternalSecret; defaults to
	// the ClusterExternalSecret's.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ExternalSecretName string `json:"externalSecretName,omitempty"`
	// ExternalSecretMetadata is metadata of every ExternalSecret.
	// +optional
	ExternalSecretMetadata ExternalSecretMetadata `json:"externalSecretMetadata,omitempty"`
	// NamespaceSelector selects namespaces (deprecated in ESO in favour of
	// namespaceSelectors; both work).
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// NamespaceSelectors: a namespace matching any of them is selected.
	// +optional
	NamespaceSelectors []*metav1.LabelSelector `json:"namespaceSelectors,omitempty"`
	// Namespaces lists namespaces by name.
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`
	// RefreshTime re-lists namespaces this often.
	// +optional
	// +kubebuilder:default="1m"
	RefreshInterval *metav1.Duration `json:"refreshTime,omitempty"`
}

// ClusterExternalSecretNamespaceFailure is a namespace that could not be
// provisioned.
type ClusterExternalSecretNamespaceFailure struct {
	// Namespace that failed.
	// +required
	Namespace string `json:"namespace"`
	// Reason it failed.
	// +optional
	Reason string `json:"reason,omitempty"`
}

// ClusterExternalSecretStatus is the observed state of a
// ClusterExternalSecret.
type ClusterExternalSecretStatus struct {
	// ObservedGeneration is the generation last provisioned.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, Reconciling, Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ExternalSecretName is the name of the stamped ExternalSecrets.
	// +optional
	ExternalSecretName string `json:"externalSecretName,omitempty"`
	// ProvisionedNamespaces lists namespaces holding the ExternalSecret.
	// +optional
	ProvisionedNamespaces []string `json:"provisionedNamespaces,omitempty"`
	// FailedNamespaces lists namespaces that could not be provisioned.
	// +optional
	FailedNamespaces []ClusterExternalSecretNamespaceFailure `json:"failedNamespaces,omitempty"`
	// LastHandledReconcileAt is the last handled value of the
	// strata.dev/reconcile-requested-at annotation.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`
}

// ClusterExternalSecret stamps one ExternalSecret into every namespace its
// selectors match.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=strata;externalsecrets,shortName=ces
// +kubebuilder:printcolumn:name="STORE",type=string,JSONPath=`.spec.externalSecretSpec.secretStoreRef.name`
// +kubebuilder:printcolumn:name="REFRESH",type=string,JSONPath=`.spec.refreshTime`
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="READY",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
type ClusterExternalSecret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec ClusterExternalSecretSpec `json:"spec"`
	// +optional
	Status ClusterExternalSecretStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions for internal/conditions.
func (c *ClusterExternalSecret) GetConditions() *[]metav1.Condition { return &c.Status.Conditions }

// +kubebuilder:object:root=true

// ClusterExternalSecretList is a list of ClusterExternalSecrets.
type ClusterExternalSecretList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterExternalSecret `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ClusterExternalSecret{}, &ClusterExternalSecretList{})
}

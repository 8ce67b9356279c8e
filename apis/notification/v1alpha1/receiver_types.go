package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ReceiverAlertmanager accepts Alertmanager webhook notifications.
const ReceiverAlertmanager = "alertmanager"

// ReceiverPathPrefix is where Strata's webhook receiver serves Receivers:
// ReceiverPathPrefix + "<namespace>/<name>".
const ReceiverPathPrefix = "/hook/alertmanager/"

// ReceiverSpec is an endpoint that accepts alerts.
type ReceiverSpec struct {
	// Type of the sender; only alertmanager.
	// +optional
	// +kubebuilder:default=alertmanager
	// +kubebuilder:validation:Enum=alertmanager
	Type string `json:"type,omitempty"`
	// SecretRef names a Secret in the Receiver's namespace whose `token`
	// authenticates requests: "Authorization: Bearer <token>" (what
	// Alertmanager's http_config.authorization sends) or
	// "X-Signature: sha256=<hex HMAC-SHA256 of the body>".
	// +required
	SecretRef LocalReference `json:"secretRef"`
}

// ReceiverStatus is the observed state of a Receiver.
type ReceiverStatus struct {
	// ObservedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, Reconciling, Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// WebhookPath is the path to configure in Alertmanager, on the
	// manager's webhook receiver address.
	// +optional
	WebhookPath string `json:"webhookPath,omitempty"`
}

// Receiver accepts Alertmanager notifications for its namespace: a firing
// alert rolls back the Syncs of this namespace whose
// spec.rollback.onAlerts matchers match its labels.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=strata
// +kubebuilder:printcolumn:name="PATH",type=string,JSONPath=`.status.webhookPath`
// +kubebuilder:printcolumn:name="READY",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type Receiver struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec ReceiverSpec `json:"spec"`
	// +optional
	Status ReceiverStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions for internal/conditions.
func (r *Receiver) GetConditions() *[]metav1.Condition { return &r.Status.Conditions }

// +kubebuilder:object:root=true

// ReceiverList is a list of Receivers.
type ReceiverList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Receiver `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Receiver{}, &ReceiverList{})
}

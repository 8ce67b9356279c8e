package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PushSecret reasons (condition Ready).
const (
	// ReasonPushSynced: every match was written to every store.
	ReasonPushSynced = "Synced"
	// ReasonPushErrored: a write failed; retried.
	ReasonPushErrored = "Errored"
	// ReasonPushSecretNotFound: the source Secret or one of its keys does
	// not exist.
	ReasonPushSecretNotFound = "SecretNotFound"
)

// PushSecretDeletionPolicy says whether values written to a store are
// deleted from it when they leave the PushSecret (or it is deleted).
// +kubebuilder:validation:Enum=Delete;None
type PushSecretDeletionPolicy string

// PushSecret deletion policies.
const (
	PushSecretDeletionPolicyDelete PushSecretDeletionPolicy = "Delete"
	PushSecretDeletionPolicyNone   PushSecretDeletionPolicy = "None"
)

// PushSecretStoreRef names a store to write to.
type PushSecretStoreRef struct {
	// Name of the store.
	// +required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Kind is SecretStore or ClusterSecretStore.
	// +optional
	// +kubebuilder:default=SecretStore
	// +kubebuilder:validation:Enum=SecretStore;ClusterSecretStore
	Kind string `json:"kind,omitempty"`
}

// PushSecretSecret names the source Secret.
type PushSecretSecret struct {
	// Name of the Secret in the PushSecret's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// PushSecretSelector selects the source.
type PushSecretSelector struct {
	// Secret is the source Secret.
	// +required
	Secret PushSecretSecret `json:"secret"`
}

// PushSecretRemoteRef is where a value is written.
type PushSecretRemoteRef struct {
	// RemoteKey is the secret's key in the store.
	// +required
	// +kubebuilder:validation:MinLength=1
	RemoteKey string `json:"remoteKey"`
	// Property within the remote secret; empty writes the value as the
	// whole secret.
	// +optional
	Property string `json:"property,omitempty"`
}

// PushSecretMatch maps one key of the source Secret to a remote location.
type PushSecretMatch struct {
	// SecretKey of the source Secret; empty pushes the whole Secret as a
	// JSON object.
	// +optional
	SecretKey string `json:"secretKey,omitempty"`
	// RemoteRef is where it is written.
	// +required
	RemoteRef PushSecretRemoteRef `json:"remoteRef"`
}

// PushSecretData is one value pushed.
type PushSecretData struct {
	// Match maps a source key to a remote location.
	// +required
	Match PushSecretMatch `json:"match"`
}

// PushSecretSpec says what to push where.
type PushSecretSpec struct {
	// SecretStoreRefs are the stores written to.
	// +required
	// +kubebuilder:validation:MinItems=1
	SecretStoreRefs []PushSecretStoreRef `json:"secretStoreRefs"`
	// Selector selects the source Secret.
	// +required
	Selector PushSecretSelector `json:"selector"`
	// Data lists the values pushed.
	// +required
	// +kubebuilder:validation:MinItems=1
	Data []PushSecretData `json:"data"`
	// DeletionPolicy Delete removes pushed values from the store when they
	// leave the PushSecret or it is deleted; None keeps them.
	// +optional
	// +kubebuilder:default=None
	DeletionPolicy PushSecretDeletionPolicy `json:"deletionPolicy,omitempty"`
	// RefreshInterval between pushes (jittered).
	// +optional
	// +kubebuilder:default="1h"
	RefreshInterval *metav1.Duration `json:"refreshInterval,omitempty"`
}

// PushSecretStatus is the observed state of a PushSecret.
type PushSecretStatus struct {
	// ObservedGeneration is the generation last pushed successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, Reconciling, Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// RefreshTime is when the values were last pushed.
	// +optional
	RefreshTime metav1.Time `json:"refreshTime,omitempty"`
	// SyncedResourceVersion is the source Secret's resourceVersion last
	// pushed.
	// +optional
	SyncedResourceVersion string `json:"syncedResourceVersion,omitempty"`
	// SyncedPushSecrets records, per store ("Kind/name"), the remote
	// locations written, so deletionPolicy Delete knows what to remove.
	// +optional
	SyncedPushSecrets map[string]map[string]PushSecretData `json:"syncedPushSecrets,omitempty"`
	// LastHandledReconcileAt is the last handled value of the
	// strata.dev/reconcile-requested-at annotation.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`
}

// PushSecret copies keys of a Kubernetes Secret into external stores.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=strata;externalsecrets,shortName=ps
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="READY",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
type PushSecret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec PushSecretSpec `json:"spec"`
	// +optional
	Status PushSecretStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions for internal/conditions.
func (p *PushSecret) GetConditions() *[]metav1.Condition { return &p.Status.Conditions }

// +kubebuilder:object:root=true

// PushSecretList is a list of PushSecrets.
type PushSecretList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PushSecret `json:"items"`
}

func init() {
	SchemeBuilder.Register(&PushSecret{}, &PushSecretList{})
}

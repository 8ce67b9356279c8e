package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	managedv1 "github.com/strata-dev/strata/internal/managed/apis/v1alpha1"
)

// DatabaseParameters are the desired settings of a PostgreSQL database.
type DatabaseParameters struct {
	// Owner is the role that owns the database; unset, it is late-initialized
	// from the server (the connecting user).
	// +optional
	Owner string `json:"owner,omitempty"`
	// OwnerRef sets Owner from a Role managed resource.
	// +optional
	OwnerRef *managedv1.Reference `json:"ownerRef,omitempty"`
	// OwnerSelector sets Owner from a Role managed resource with these labels.
	// +optional
	OwnerSelector *managedv1.Selector `json:"ownerSelector,omitempty"`
	// Encoding of the database, e.g. UTF8. It cannot change after creation.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="encoding is immutable"
	Encoding string `json:"encoding,omitempty"`
	// Template is the database copied at creation (create only).
	// +optional
	Template string `json:"template,omitempty"`
	// ConnectionLimit is the maximum number of connections; -1 is no limit.
	// +optional
	// +kubebuilder:validation:Minimum=-1
	ConnectionLimit *int32 `json:"connectionLimit,omitempty"`
}

// DatabaseObservation is the observed state of a PostgreSQL database.
type DatabaseObservation struct {
	// Owner of the database.
	// +optional
	Owner string `json:"owner,omitempty"`
	// Encoding of the database.
	// +optional
	Encoding string `json:"encoding,omitempty"`
	// ConnectionLimit of the database.
	// +optional
	ConnectionLimit *int32 `json:"connectionLimit,omitempty"`
}

// DatabaseSpec is the desired state of a Database.
type DatabaseSpec struct {
	managedv1.ResourceSpec `json:",inline"`
	// ForProvider are the desired settings.
	// +optional
	ForProvider DatabaseParameters `json:"forProvider,omitempty"`
	// InitProvider are settings used only at create.
	// +optional
	InitProvider DatabaseParameters `json:"initProvider,omitempty"`
}

// DatabaseStatus is the observed state of a Database.
type DatabaseStatus struct {
	managedv1.ResourceStatus `json:",inline"`
	// AtProvider is the observed state.
	// +optional
	AtProvider DatabaseObservation `json:"atProvider,omitempty"`
}

// Database is a PostgreSQL database. Its name is the strata.dev/external-name
// annotation, or metadata.name.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories={strata,managed,sql}
// +kubebuilder:printcolumn:name="READY",type="string",JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="SYNCED",type="string",JSONPath=".status.conditions[?(@.type=='Synced')].status"
// +kubebuilder:printcolumn:name="EXTERNAL-NAME",type="string",JSONPath=".metadata.annotations.strata\\.dev/external-name"
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
type Database struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// +required
	Spec DatabaseSpec `json:"spec"`
	// +optional
	Status DatabaseStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions.
func (r *Database) GetConditions() *[]metav1.Condition { return &r.Status.Conditions }

// ManagedSpec returns the shared spec fields.
func (r *Database) ManagedSpec() *managedv1.ResourceSpec { return &r.Spec.ResourceSpec }

// ManagedStatus returns the shared status fields.
func (r *Database) ManagedStatus() *managedv1.ResourceStatus { return &r.Status.ResourceStatus }

// DatabaseList is a list of Databases.
// +kubebuilder:object:root=true
type DatabaseList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Database `json:"items"`
}

func init() { SchemeBuilder.Register(&Database{}, &DatabaseList{}) }

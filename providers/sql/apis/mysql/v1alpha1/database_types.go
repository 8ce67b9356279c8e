package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	managedv1 "github.com/strata-dev/strata/internal/managed/apis/v1alpha1"
)

// DatabaseParameters are the desired settings of a MySQL database.
type DatabaseParameters struct {
	// CharacterSet is the default character set, e.g. utf8mb4; unset, it is
	// late-initialized from the server.
	// +optional
	CharacterSet string `json:"characterSet,omitempty"`
	// Collation is the default collation, e.g. utf8mb4_general_ci; unset, it
	// is late-initialized from the server.
	// +optional
	Collation string `json:"collation,omitempty"`
}

// DatabaseObservation is the observed state of a MySQL database.
type DatabaseObservation struct {
	// CharacterSet of the database.
	// +optional
	CharacterSet string `json:"characterSet,omitempty"`
	// Collation of the database.
	// +optional
	Collation string `json:"collation,omitempty"`
}

// DatabaseSpec is the desired state of a Database.
type DatabaseSpec struct {
	managedv1.ResourceSpec `json:",inline"`
	// ForProvider are the desired settings.
	// +optional
	ForProvider DatabaseParameters `json:"forProvider,omitempty"`
}

// DatabaseStatus is the observed state of a Database.
type DatabaseStatus struct {
	managedv1.ResourceStatus `json:",inline"`
	// AtProvider is the observed state.
	// +optional
	AtProvider DatabaseObservation `json:"atProvider,omitempty"`
}

// Database is a MySQL/MariaDB database (schema). Its name is the
// strata.dev/external-name annotation, or metadata.name.
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

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	managedv1 "github.com/strata-dev/strata/internal/managed/apis/v1alpha1"
)

// GrantPrivilege is a MySQL privilege. ALL grants every privilege of the
// level (database or table) except GRANT OPTION.
// +kubebuilder:validation:Enum=ALL;SELECT;INSERT;UPDATE;DELETE;CREATE;DROP;REFERENCES;INDEX;ALTER;"CREATE TEMPORARY TABLES";"LOCK TABLES";"CREATE VIEW";"SHOW VIEW";"CREATE ROUTINE";"ALTER ROUTINE";EXECUTE;EVENT;TRIGGER
type GrantPrivilege string

// GrantParameters are the privileges a user has on a database or table.
type GrantParameters struct {
	// User receives the privileges.
	// +optional
	User string `json:"user,omitempty"`
	// UserRef sets User (and Host) from a User managed resource.
	// +optional
	UserRef *managedv1.Reference `json:"userRef,omitempty"`
	// UserSelector sets User from a User managed resource with these labels.
	// +optional
	UserSelector *managedv1.Selector `json:"userSelector,omitempty"`
	// Host of the user; default "%".
	// +optional
	// +kubebuilder:default="%"
	Host string `json:"host,omitempty"`
	// Database the privileges are on.
	// +optional
	Database string `json:"database,omitempty"`
	// DatabaseRef sets Database from a Database managed resource.
	// +optional
	DatabaseRef *managedv1.Reference `json:"databaseRef,omitempty"`
	// DatabaseSelector sets Database from a Database managed resource with
	// these labels.
	// +optional
	DatabaseSelector *managedv1.Selector `json:"databaseSelector,omitempty"`
	// Table the privileges are on; unset, they are on the whole database.
	// +optional
	Table string `json:"table,omitempty"`
	// Privileges granted.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +listType=set
	Privileges []GrantPrivilege `json:"privileges"`
}

// GrantObservation is the observed state of a grant.
type GrantObservation struct {
	// Privileges the user holds at the level of the grant.
	// +optional
	Privileges []string `json:"privileges,omitempty"`
}

// GrantSpec is the desired state of a Grant.
type GrantSpec struct {
	managedv1.ResourceSpec `json:",inline"`
	// ForProvider are the desired settings.
	// +optional
	ForProvider GrantParameters `json:"forProvider,omitempty"`
}

// GrantStatus is the observed state of a Grant.
type GrantStatus struct {
	managedv1.ResourceStatus `json:",inline"`
	// AtProvider is the observed state.
	// +optional
	AtProvider GrantObservation `json:"atProvider,omitempty"`
}

// Grant gives a MySQL/MariaDB user privileges on a database or table.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories={strata,managed,sql}
// +kubebuilder:printcolumn:name="READY",type="string",JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="SYNCED",type="string",JSONPath=".status.conditions[?(@.type=='Synced')].status"
// +kubebuilder:printcolumn:name="EXTERNAL-NAME",type="string",JSONPath=".metadata.annotations.strata\\.dev/external-name"
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
type Grant struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// +required
	Spec GrantSpec `json:"spec"`
	// +optional
	Status GrantStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions.
func (r *Grant) GetConditions() *[]metav1.Condition { return &r.Status.Conditions }

// ManagedSpec returns the shared spec fields.
func (r *Grant) ManagedSpec() *managedv1.ResourceSpec { return &r.Spec.ResourceSpec }

// ManagedStatus returns the shared status fields.
func (r *Grant) ManagedStatus() *managedv1.ResourceStatus { return &r.Status.ResourceStatus }

// GrantList is a list of Grants.
// +kubebuilder:object:root=true
type GrantList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Grant `json:"items"`
}

func init() { SchemeBuilder.Register(&Grant{}, &GrantList{}) }

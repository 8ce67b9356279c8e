package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	managedv1 "github.com/strata-dev/strata/internal/managed/apis/v1alpha1"
)

// GrantPrivilege is a privilege on a database or schema. ALL expands to
// every privilege of the object.
// +kubebuilder:validation:Enum=ALL;CONNECT;CREATE;TEMPORARY;USAGE
type GrantPrivilege string

// GrantParameters are the desired privileges of a role.
// +kubebuilder:validation:XValidation:rule="has(self.memberOf) || has(self.memberOfRef) || has(self.memberOfSelector) || (has(self.privileges) && size(self.privileges) > 0)",message="set privileges (on a database or schema) or memberOf (role membership)"
type GrantParameters struct {
	// Role receives the grant.
	// +optional
	Role string `json:"role,omitempty"`
	// RoleRef sets Role from a Role managed resource.
	// +optional
	RoleRef *managedv1.Reference `json:"roleRef,omitempty"`
	// RoleSelector sets Role from a Role managed resource with these labels.
	// +optional
	RoleSelector *managedv1.Selector `json:"roleSelector,omitempty"`
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
	// Schema, when set, makes the privileges apply to this schema of
	// Database (USAGE, CREATE) instead of the database (CONNECT, CREATE,
	// TEMPORARY).
	// +optional
	Schema string `json:"schema,omitempty"`
	// Privileges granted.
	// +optional
	// +listType=set
	Privileges []GrantPrivilege `json:"privileges,omitempty"`
	// MemberOf grants membership of this role to Role.
	// +optional
	MemberOf string `json:"memberOf,omitempty"`
	// MemberOfRef sets MemberOf from a Role managed resource.
	// +optional
	MemberOfRef *managedv1.Reference `json:"memberOfRef,omitempty"`
	// MemberOfSelector sets MemberOf from a Role managed resource with these
	// labels.
	// +optional
	MemberOfSelector *managedv1.Selector `json:"memberOfSelector,omitempty"`
}

// GrantObservation is the observed state of a grant.
type GrantObservation struct {
	// Privileges the role holds on the object.
	// +optional
	Privileges []string `json:"privileges,omitempty"`
	// Member is true when Role is a member of MemberOf.
	// +optional
	Member bool `json:"member,omitempty"`
}

// GrantSpec is the desired state of a Grant.
type GrantSpec struct {
	managedv1.ResourceSpec `json:",inline"`
	// ForProvider are the desired privileges.
	// +required
	ForProvider GrantParameters `json:"forProvider"`
}

// GrantStatus is the observed state of a Grant.
type GrantStatus struct {
	managedv1.ResourceStatus `json:",inline"`
	// AtProvider is the observed state.
	// +optional
	AtProvider GrantObservation `json:"atProvider,omitempty"`
}

// Grant gives a role privileges on a database or schema, or membership of
// another role.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories={strata,managed,sql}
// +kubebuilder:printcolumn:name="READY",type="string",JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="SYNCED",type="string",JSONPath=".status.conditions[?(@.type=='Synced')].status"
// +kubebuilder:printcolumn:name="ROLE",type="string",JSONPath=".spec.forProvider.role"
// +kubebuilder:printcolumn:name="DATABASE",type="string",JSONPath=".spec.forProvider.database"
// +kubebuilder:printcolumn:name="EXTERNAL-NAME",type="string",JSONPath=".metadata.annotations.strata\\.dev/external-name",priority=1
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

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	managedv1 "github.com/strata-dev/strata/internal/managed/apis/v1alpha1"
)

// RolePrivileges are a role's attribute flags; unset flags are
// late-initialized from the server.
type RolePrivileges struct {
	// Login lets the role log in.
	// +optional
	Login *bool `json:"login,omitempty"`
	// CreateDB lets the role create databases.
	// +optional
	CreateDB *bool `json:"createDb,omitempty"`
	// CreateRole lets the role create roles.
	// +optional
	CreateRole *bool `json:"createRole,omitempty"`
	// Inherit makes the role inherit the privileges of roles it is a member of.
	// +optional
	Inherit *bool `json:"inherit,omitempty"`
}

// RoleParameters are the desired settings of a PostgreSQL role.
type RoleParameters struct {
	// Privileges are the role's attribute flags.
	// +optional
	Privileges RolePrivileges `json:"privileges,omitempty"`
	// ConnectionLimit is the maximum number of connections; -1 is no limit.
	// +optional
	// +kubebuilder:validation:Minimum=-1
	ConnectionLimit *int32 `json:"connectionLimit,omitempty"`
	// PasswordSecretRef names the Secret key holding the password. Unset, a
	// password is generated (crypto/rand) and published to the connection
	// Secret, if there is one.
	// +optional
	PasswordSecretRef *managedv1.SecretKeySelector `json:"passwordSecretRef,omitempty"`
	// MemberOf are roles this role is a member of (and inherits from when
	// Inherit is true).
	// +optional
	// +listType=set
	MemberOf []string `json:"memberOf,omitempty"`
}

// RoleObservation is the observed state of a PostgreSQL role.
type RoleObservation struct {
	// Privileges are the role's attribute flags.
	// +optional
	Privileges RolePrivileges `json:"privileges,omitempty"`
	// ConnectionLimit of the role.
	// +optional
	ConnectionLimit *int32 `json:"connectionLimit,omitempty"`
	// MemberOf are the roles this role is a member of.
	// +optional
	MemberOf []string `json:"memberOf,omitempty"`
}

// RoleSpec is the desired state of a Role.
type RoleSpec struct {
	managedv1.ResourceSpec `json:",inline"`
	// ForProvider are the desired settings.
	// +optional
	ForProvider RoleParameters `json:"forProvider,omitempty"`
	// InitProvider are settings used only at create.
	// +optional
	InitProvider RoleParameters `json:"initProvider,omitempty"`
}

// RoleStatus is the observed state of a Role.
type RoleStatus struct {
	managedv1.ResourceStatus `json:",inline"`
	// AtProvider is the observed state.
	// +optional
	AtProvider RoleObservation `json:"atProvider,omitempty"`
}

// Role is a PostgreSQL role. Its connection Secret holds username, password,
// endpoint and port.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories={strata,managed,sql}
// +kubebuilder:printcolumn:name="READY",type="string",JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="SYNCED",type="string",JSONPath=".status.conditions[?(@.type=='Synced')].status"
// +kubebuilder:printcolumn:name="EXTERNAL-NAME",type="string",JSONPath=".metadata.annotations.strata\\.dev/external-name"
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
type Role struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// +required
	Spec RoleSpec `json:"spec"`
	// +optional
	Status RoleStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions.
func (r *Role) GetConditions() *[]metav1.Condition { return &r.Status.Conditions }

// ManagedSpec returns the shared spec fields.
func (r *Role) ManagedSpec() *managedv1.ResourceSpec { return &r.Spec.ResourceSpec }

// ManagedStatus returns the shared status fields.
func (r *Role) ManagedStatus() *managedv1.ResourceStatus { return &r.Status.ResourceStatus }

// RoleList is a list of Roles.
// +kubebuilder:object:root=true
type RoleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Role `json:"items"`
}

func init() { SchemeBuilder.Register(&Role{}, &RoleList{}) }

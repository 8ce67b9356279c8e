package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	managedv1 "github.com/strata-dev/strata/internal/managed/apis/v1alpha1"
)

// ResourceLimits limit what a user may do per hour.
type ResourceLimits struct {
	// MaxQueriesPerHour; 0 is no limit.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxQueriesPerHour *int32 `json:"maxQueriesPerHour,omitempty"`
	// MaxUpdatesPerHour; 0 is no limit.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxUpdatesPerHour *int32 `json:"maxUpdatesPerHour,omitempty"`
	// MaxConnectionsPerHour; 0 is no limit.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxConnectionsPerHour *int32 `json:"maxConnectionsPerHour,omitempty"`
	// MaxUserConnections is the number of simultaneous connections; 0 is no
	// limit.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxUserConnections *int32 `json:"maxUserConnections,omitempty"`
}

// UserParameters are the desired settings of a MySQL user.
type UserParameters struct {
	// Host the user may connect from; default "%" (anywhere).
	// +optional
	// +kubebuilder:default="%"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="host is immutable"
	Host string `json:"host,omitempty"`
	// PasswordSecretRef names the Secret key holding the password. Unset, a
	// password is generated (crypto/rand) and published to the connection
	// Secret, if there is one.
	// +optional
	PasswordSecretRef *managedv1.SecretKeySelector `json:"passwordSecretRef,omitempty"`
	// ResourceLimits of the user; unset limits are late-initialized.
	// +optional
	ResourceLimits ResourceLimits `json:"resourceLimits,omitempty"`
}

// UserObservation is the observed state of a MySQL user.
type UserObservation struct {
	// ResourceLimits of the user.
	// +optional
	ResourceLimits ResourceLimits `json:"resourceLimits,omitempty"`
}

// UserSpec is the desired state of a User.
type UserSpec struct {
	managedv1.ResourceSpec `json:",inline"`
	// ForProvider are the desired settings.
	// +optional
	ForProvider UserParameters `json:"forProvider,omitempty"`
}

// UserStatus is the observed state of a User.
type UserStatus struct {
	managedv1.ResourceStatus `json:",inline"`
	// AtProvider is the observed state.
	// +optional
	AtProvider UserObservation `json:"atProvider,omitempty"`
}

// User is a MySQL/MariaDB user account (name@host). Its connection Secret
// holds username, password, endpoint and port.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories={strata,managed,sql}
// +kubebuilder:printcolumn:name="READY",type="string",JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="SYNCED",type="string",JSONPath=".status.conditions[?(@.type=='Synced')].status"
// +kubebuilder:printcolumn:name="EXTERNAL-NAME",type="string",JSONPath=".metadata.annotations.strata\\.dev/external-name"
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
type User struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// +required
	Spec UserSpec `json:"spec"`
	// +optional
	Status UserStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions.
func (r *User) GetConditions() *[]metav1.Condition { return &r.Status.Conditions }

// ManagedSpec returns the shared spec fields.
func (r *User) ManagedSpec() *managedv1.ResourceSpec { return &r.Spec.ResourceSpec }

// ManagedStatus returns the shared status fields.
func (r *User) ManagedStatus() *managedv1.ResourceStatus { return &r.Status.ResourceStatus }

// UserList is a list of Users.
// +kubebuilder:object:root=true
type UserList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []User `json:"items"`
}

func init() { SchemeBuilder.Register(&User{}, &UserList{}) }

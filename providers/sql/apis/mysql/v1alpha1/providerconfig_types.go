package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	managedv1 "github.com/strata-dev/strata/internal/managed/apis/v1alpha1"
)

// ProviderConfigSpec says how to connect to a MySQL or MariaDB server.
type ProviderConfigSpec struct {
	// ConnectionSecretRef names a Secret with the keys endpoint (host),
	// port (default 3306), username, password and optionally tls (false,
	// true, skip-verify or preferred; default false).
	// +required
	ConnectionSecretRef managedv1.SecretReference `json:"connectionSecretRef"`

	managedv1.ProviderConfigUsage `json:",inline"`
}

// ProviderConfig says how to connect to a MySQL or MariaDB server. A
// ProviderConfig in use by managed resources cannot be deleted until they
// are gone; status.users counts them.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories={strata,providerconfig}
// +kubebuilder:printcolumn:name="READY",type="string",JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="USERS",type="integer",JSONPath=".status.users"
// +kubebuilder:printcolumn:name="SECRET",type="string",JSONPath=".spec.connectionSecretRef.name",priority=1
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
type ProviderConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// +required
	Spec ProviderConfigSpec `json:"spec"`
	// +optional
	Status managedv1.ProviderConfigStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions.
func (p *ProviderConfig) GetConditions() *[]metav1.Condition { return &p.Status.Conditions }

// ProviderConfigStatus returns the shared status.
func (p *ProviderConfig) ProviderConfigStatus() *managedv1.ProviderConfigStatus { return &p.Status }

// ProviderConfigUsage returns who may use it.
func (p *ProviderConfig) ProviderConfigUsage() *managedv1.ProviderConfigUsage {
	return &p.Spec.ProviderConfigUsage
}

// ProviderConfigList is a list of ProviderConfigs.
// +kubebuilder:object:root=true
type ProviderConfigList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ProviderConfig `json:"items"`
}

func init() { SchemeBuilder.Register(&ProviderConfig{}, &ProviderConfigList{}) }

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	managedv1 "github.com/strata-dev/strata/internal/managed/apis/v1alpha1"
)

// ProviderConfigSpec says how to reach S3 or an S3-compatible service.
type ProviderConfigSpec struct {
	// CredentialsSecretRef names a Secret with the keys access_key_id,
	// secret_access_key and optionally session_token.
	// +required
	CredentialsSecretRef managedv1.SecretReference `json:"credentialsSecretRef"`
	// Endpoint of an S3-compatible service, e.g. http://127.0.0.1:7070;
	// unset, AWS's regional endpoints are used.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`
	// UsePathStyle addresses buckets as endpoint/bucket instead of
	// bucket.endpoint, as most S3-compatible services need.
	// +optional
	UsePathStyle bool `json:"usePathStyle,omitempty"`
	// Region used when a Bucket sets none; default us-east-1.
	// +optional
	// +kubebuilder:default=us-east-1
	Region string `json:"region,omitempty"`

	managedv1.ProviderConfigUsage `json:",inline"`
}

// ProviderConfig says how to reach S3. A ProviderConfig in use by Buckets
// cannot be deleted until they are gone; status.users counts them.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories={strata,providerconfig}
// +kubebuilder:printcolumn:name="READY",type="string",JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="USERS",type="integer",JSONPath=".status.users"
// +kubebuilder:printcolumn:name="ENDPOINT",type="string",JSONPath=".spec.endpoint"
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

// LifecycleRule expires objects after some days.
type LifecycleRule struct {
	// ID names the rule.
	// +required
	// +kubebuilder:validation:MinLength=1
	ID string `json:"id"`
	// Prefix of the keys the rule applies to; empty is every key.
	// +optional
	Prefix string `json:"prefix,omitempty"`
	// ExpirationDays after which objects are deleted.
	// +required
	// +kubebuilder:validation:Minimum=1
	ExpirationDays int32 `json:"expirationDays"`
	// Enabled turns the rule on; default true.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`
}

// BucketParameters are the desired settings of a bucket.
type BucketParameters struct {
	// Region of the bucket; unset, the ProviderConfig's. It cannot change.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="region is immutable"
	Region string `json:"region,omitempty"`
	// Versioning keeps every version of every object when true.
	// +optional
	Versioning *bool `json:"versioning,omitempty"`
	// Tags of the bucket.
	// +optional
	Tags map[string]string `json:"tags,omitempty"`
	// Policy is the bucket policy, a JSON document.
	// +optional
	Policy string `json:"policy,omitempty"`
	// LifecycleRules expire objects.
	// +optional
	// +listType=map
	// +listMapKey=id
	LifecycleRules []LifecycleRule `json:"lifecycleRules,omitempty"`
}

// BucketObservation is the observed state of a bucket.
type BucketObservation struct {
	// Region of the bucket.
	// +optional
	Region string `json:"region,omitempty"`
	// VersioningStatus is Enabled, Suspended or empty (never enabled).
	// +optional
	VersioningStatus string `json:"versioningStatus,omitempty"`
	// Tags of the bucket.
	// +optional
	Tags map[string]string `json:"tags,omitempty"`
	// HasPolicy is true when the bucket has a policy.
	// +optional
	HasPolicy bool `json:"hasPolicy,omitempty"`
	// LifecycleRules of the bucket.
	// +optional
	LifecycleRules []LifecycleRule `json:"lifecycleRules,omitempty"`
}

// BucketSpec is the desired state of a Bucket.
type BucketSpec struct {
	managedv1.ResourceSpec `json:",inline"`
	// ForProvider are the desired settings.
	// +optional
	ForProvider BucketParameters `json:"forProvider,omitempty"`
}

// BucketStatus is the observed state of a Bucket.
type BucketStatus struct {
	managedv1.ResourceStatus `json:",inline"`
	// AtProvider is the observed state.
	// +optional
	AtProvider BucketObservation `json:"atProvider,omitempty"`
}

// Bucket is an S3 bucket. Its name is the strata.dev/external-name
// annotation, or metadata.name. Its connection Secret holds endpoint,
// region, bucket, access_key_id and secret_access_key.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories={strata,managed,s3}
// +kubebuilder:printcolumn:name="READY",type="string",JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="SYNCED",type="string",JSONPath=".status.conditions[?(@.type=='Synced')].status"
// +kubebuilder:printcolumn:name="EXTERNAL-NAME",type="string",JSONPath=".metadata.annotations.strata\\.dev/external-name"
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
type Bucket struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// +required
	Spec BucketSpec `json:"spec"`
	// +optional
	Status BucketStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions.
func (r *Bucket) GetConditions() *[]metav1.Condition { return &r.Status.Conditions }

// ManagedSpec returns the shared spec fields.
func (r *Bucket) ManagedSpec() *managedv1.ResourceSpec { return &r.Spec.ResourceSpec }

// ManagedStatus returns the shared status fields.
func (r *Bucket) ManagedStatus() *managedv1.ResourceStatus { return &r.Status.ResourceStatus }

// BucketList is a list of Buckets.
// +kubebuilder:object:root=true
type BucketList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Bucket `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ProviderConfig{}, &ProviderConfigList{}, &Bucket{}, &BucketList{})
}

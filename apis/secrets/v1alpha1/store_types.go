package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Store reasons (condition Ready).
const (
	// ReasonValid: the provider configuration is valid and the store
	// answered with the given credentials.
	ReasonValid = "Valid"
	// ReasonInvalidProviderConfig: the spec cannot work as written (no or
	// several providers, a credentials Secret in another namespace, a
	// missing Secret key, a URL template that does not parse). Stalled.
	ReasonInvalidProviderConfig = "InvalidProviderConfig"
	// ReasonProviderError: the store could not be reached or refused the
	// credentials; retried with backoff.
	ReasonProviderError = "ProviderError"
)

// Event reasons of stores.
const (
	EventValid                 = "Valid"
	EventInvalidProviderConfig = "InvalidProviderConfig"
	EventValidationFailed      = "ValidationFailed"
)

// Store kinds, as named by secretStoreRef.kind.
const (
	SecretStoreKind        = "SecretStore"
	ClusterSecretStoreKind = "ClusterSecretStore"
)

// Capabilities of a store.
const (
	CapabilityReadOnly  = "ReadOnly"
	CapabilityWriteOnly = "WriteOnly"
	CapabilityReadWrite = "ReadWrite"
)

// SecretKeySelector names one key of a Kubernetes Secret.
type SecretKeySelector struct {
	// Name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Namespace of the Secret. Only a ClusterSecretStore may set it; a
	// SecretStore reads Secrets of its own namespace only.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`
	// Key in the Secret's data.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key,omitempty"`
}

// ServiceAccountSelector names a ServiceAccount whose token the store uses.
type ServiceAccountSelector struct {
	// Name of the ServiceAccount.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Namespace of the ServiceAccount. Only a ClusterSecretStore may set
	// it; otherwise the ServiceAccount is in the store's (SecretStore) or
	// the ExternalSecret's (ClusterSecretStore) namespace.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`
	// Audiences of the requested token; defaults to the API server's.
	// +optional
	Audiences []string `json:"audiences,omitempty"`
}

// CAProvider names a Secret or ConfigMap key holding a PEM CA bundle.
type CAProvider struct {
	// Type is Secret or ConfigMap.
	// +required
	// +kubebuilder:validation:Enum=Secret;ConfigMap
	Type string `json:"type"`
	// Name of the object.
	// +required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Key holding the bundle.
	// +required
	// +kubebuilder:validation:MinLength=1
	Key string `json:"key"`
	// Namespace of the object. Only a ClusterSecretStore may set it.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// VaultKVStoreVersion is the version of Vault's KV secrets engine.
// +kubebuilder:validation:Enum=v1;v2
type VaultKVStoreVersion string

// KV versions.
const (
	VaultKVStoreV1 VaultKVStoreVersion = "v1"
	VaultKVStoreV2 VaultKVStoreVersion = "v2"
)

// VaultProvider reads and writes HashiCorp Vault's KV secrets engine.
type VaultProvider struct {
	// Server is Vault's address, e.g. https://vault.example:8200.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:Pattern=`^https?://`
	Server string `json:"server"`
	// Path is the mount path of the KV engine, e.g. "secret".
	// +optional
	Path *string `json:"path,omitempty"`
	// Version of the KV engine: v1 or v2.
	// +optional
	// +kubebuilder:default=v2
	Version VaultKVStoreVersion `json:"version,omitempty"`
	// Namespace is the Vault Enterprise namespace.
	// +optional
	Namespace *string `json:"namespace,omitempty"`
	// CABundle is a PEM bundle that verifies Vault's certificate.
	// +optional
	CABundle []byte `json:"caBundle,omitempty"`
	// CAProvider reads the PEM bundle from a Secret or ConfigMap.
	// +optional
	CAProvider *CAProvider `json:"caProvider,omitempty"`
	// Auth says how to log in.
	// +required
	Auth VaultAuth `json:"auth"`
}

// VaultAuth is exactly one way to log in to Vault.
// +kubebuilder:validation:XValidation:rule="(has(self.tokenSecretRef) ? 1 : 0) + (has(self.appRole) ? 1 : 0) + (has(self.kubernetes) ? 1 : 0) == 1",message="exactly one of tokenSecretRef, appRole, kubernetes must be set"
type VaultAuth struct {
	// TokenSecretRef names a Secret key holding a Vault token.
	// +optional
	TokenSecretRef *SecretKeySelector `json:"tokenSecretRef,omitempty"`
	// AppRole logs in with a role ID and a secret ID.
	// +optional
	AppRole *VaultAppRole `json:"appRole,omitempty"`
	// Kubernetes logs in with a ServiceAccount token that Vault checks with
	// the API server's TokenReview.
	// +optional
	Kubernetes *VaultKubernetesAuth `json:"kubernetes,omitempty"`
}

// VaultAppRole is Vault's AppRole auth method.
type VaultAppRole struct {
	// Path where the AppRole auth method is mounted.
	// +optional
	// +kubebuilder:default=approle
	Path string `json:"path,omitempty"`
	// RoleID of the role.
	// +optional
	RoleID string `json:"roleId,omitempty"`
	// RoleRef reads the role ID from a Secret key instead.
	// +optional
	RoleRef *SecretKeySelector `json:"roleRef,omitempty"`
	// SecretRef names the Secret key holding the secret ID.
	// +required
	SecretRef SecretKeySelector `json:"secretRef"`
}

// VaultKubernetesAuth is Vault's Kubernetes auth method.
type VaultKubernetesAuth struct {
	// MountPath where the Kubernetes auth method is mounted.
	// +optional
	// +kubebuilder:default=kubernetes
	MountPath string `json:"mountPath,omitempty"`
	// Role to log in as.
	// +required
	// +kubebuilder:validation:MinLength=1
	Role string `json:"role"`
	// ServiceAccountRef is the ServiceAccount whose token (requested with
	// the TokenRequest API) is presented to Vault.
	// +optional
	ServiceAccountRef *ServiceAccountSelector `json:"serviceAccountRef,omitempty"`
	// SecretRef names a Secret key holding a ServiceAccount token instead.
	// +optional
	SecretRef *SecretKeySelector `json:"secretRef,omitempty"`
}

// KubernetesServer is the API server a kubernetes store reads.
type KubernetesServer struct {
	// URL of the API server; empty is the cluster Strata runs in.
	// +optional
	// +kubebuilder:validation:Pattern=`^https://`
	URL string `json:"url,omitempty"`
	// CABundle is a PEM bundle that verifies the server's certificate.
	// +optional
	CABundle []byte `json:"caBundle,omitempty"`
	// CAProvider reads the PEM bundle from a Secret or ConfigMap.
	// +optional
	CAProvider *CAProvider `json:"caProvider,omitempty"`
}

// KubernetesAuth is exactly one way to authenticate to the API server.
// +kubebuilder:validation:XValidation:rule="(has(self.token) ? 1 : 0) + (has(self.serviceAccount) ? 1 : 0) == 1",message="exactly one of token, serviceAccount must be set"
type KubernetesAuth struct {
	// Token names a Secret key holding a bearer token.
	// +optional
	Token *TokenAuth `json:"token,omitempty"`
	// ServiceAccount authenticates with a token requested for this
	// ServiceAccount (TokenRequest API), so the store acts with that
	// ServiceAccount's rights, never Strata's.
	// +optional
	ServiceAccount *ServiceAccountSelector `json:"serviceAccount,omitempty"`
}

// TokenAuth is a bearer token read from a Secret.
type TokenAuth struct {
	// BearerToken names the Secret key holding the token.
	// +required
	BearerToken SecretKeySelector `json:"bearerToken"`
}

// KubernetesProvider reads Secrets of another namespace or another cluster.
// A remote key is a Secret name; a property is a key of its data.
type KubernetesProvider struct {
	// Server is the API server; empty is the local one.
	// +optional
	Server KubernetesServer `json:"server,omitempty"`
	// Auth says how to authenticate. It is required: the store never uses
	// Strata's own rights.
	// +required
	Auth KubernetesAuth `json:"auth"`
	// RemoteNamespace is the namespace whose Secrets are read.
	// +optional
	// +kubebuilder:default=default
	// +kubebuilder:validation:MaxLength=63
	RemoteNamespace string `json:"remoteNamespace,omitempty"`
}

// WebhookResult says how to read the value from the response.
type WebhookResult struct {
	// JSONPath selects the value in a JSON response, e.g. `$.data.value`
	// (Kubernetes JSONPath syntax). Empty uses the whole body.
	// +optional
	JSONPath string `json:"jsonPath,omitempty"`
}

// WebhookSecret makes a Secret's data available to the webhook's templates
// as `.<name>.<key>`.
type WebhookSecret struct {
	// Name under which the data is available to templates.
	// +required
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*$`
	Name string `json:"name"`
	// SecretRef names the Secret (its key is ignored).
	// +required
	SecretRef SecretKeySelector `json:"secretRef"`
}

// WebhookProvider calls an HTTP JSON endpoint. The url, headers and body are
// Go templates over `.remoteRef.key`, `.remoteRef.property`,
// `.remoteRef.version` and the secrets.
type WebhookProvider struct {
	// URL template of the endpoint.
	// +required
	// +kubebuilder:validation:MinLength=1
	URL string `json:"url"`
	// Method of the request.
	// +optional
	// +kubebuilder:default=GET
	// +kubebuilder:validation:Enum=GET;POST;PUT
	Method string `json:"method,omitempty"`
	// Headers of the request; values are templates.
	// +optional
	Headers map[string]string `json:"headers,omitempty"`
	// Body template of the request.
	// +optional
	Body string `json:"body,omitempty"`
	// Timeout of a request.
	// +optional
	// +kubebuilder:default="10s"
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// Result says how to read the value.
	// +optional
	Result WebhookResult `json:"result,omitempty"`
	// Secrets available to the templates.
	// +optional
	Secrets []WebhookSecret `json:"secrets,omitempty"`
	// CABundle is a PEM bundle that verifies the endpoint's certificate.
	// +optional
	CABundle []byte `json:"caBundle,omitempty"`
	// CAProvider reads the PEM bundle from a Secret or ConfigMap.
	// +optional
	CAProvider *CAProvider `json:"caProvider,omitempty"`
}

// FakeProviderData is one key of a fake store.
type FakeProviderData struct {
	// Key of the value.
	// +required
	// +kubebuilder:validation:MinLength=1
	Key string `json:"key"`
	// Value as a string; a JSON object is structured (properties are its
	// fields).
	// +optional
	Value string `json:"value,omitempty"`
	// Version of the value; empty matches a request without a version.
	// +optional
	Version string `json:"version,omitempty"`
	// ValueMap is a structured value (properties are its keys).
	// +optional
	ValueMap map[string]string `json:"valueMap,omitempty"`
}

// FakeProvider serves static data, for tests and demos.
type FakeProvider struct {
	// Data of the store.
	// +optional
	Data []FakeProviderData `json:"data,omitempty"`
}

// SecretStoreProvider is exactly one provider.
// +kubebuilder:validation:XValidation:rule="(has(self.vault) ? 1 : 0) + (has(self.kubernetes) ? 1 : 0) + (has(self.webhook) ? 1 : 0) + (has(self.fake) ? 1 : 0) == 1",message="exactly one provider (vault, kubernetes, webhook, fake) must be set"
type SecretStoreProvider struct {
	// Vault is HashiCorp Vault.
	// +optional
	Vault *VaultProvider `json:"vault,omitempty"`
	// Kubernetes is another namespace or another cluster.
	// +optional
	Kubernetes *KubernetesProvider `json:"kubernetes,omitempty"`
	// Webhook is a generic HTTP JSON endpoint.
	// +optional
	Webhook *WebhookProvider `json:"webhook,omitempty"`
	// Fake is static data.
	// +optional
	Fake *FakeProvider `json:"fake,omitempty"`
}

// RateLimit bounds the requests a store sends to its provider, across every
// ExternalSecret and PushSecret that uses it.
type RateLimit struct {
	// QPS is the sustained number of requests per second.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	QPS int32 `json:"qps"`
	// Burst is the number of requests allowed at once; defaults to qps.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	Burst int32 `json:"burst,omitempty"`
}

// SecretStoreRetrySettings retry a failed request to the provider before
// the reconcile fails (ESO's retrySettings).
type SecretStoreRetrySettings struct {
	// MaxRetries is how many times a failed request is retried (0 never).
	// A key that does not exist is not retried.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	MaxRetries *int32 `json:"maxRetries,omitempty"`
	// RetryInterval is the wait before each retry (default 1s, at most 30s).
	// +optional
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m))+$`
	RetryInterval *string `json:"retryInterval,omitempty"`
}

// ClusterSecretStoreCondition says which namespaces may use a
// ClusterSecretStore: a namespace matches when it is listed, matches a
// regular expression, or matches the selector.
type ClusterSecretStoreCondition struct {
	// NamespaceSelector selects namespaces by label.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// Namespaces lists namespaces by name.
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`
	// NamespaceRegexes lists regular expressions (anchored) over namespace
	// names.
	// +optional
	NamespaceRegexes []string `json:"namespaceRegexes,omitempty"`
}

// SecretStoreSpec is how to reach a store.
type SecretStoreSpec struct {
	// Provider is the store.
	// +required
	Provider SecretStoreProvider `json:"provider"`
	// RateLimit bounds the store's requests to its provider; without it a
	// store sends at most 10 requests per second (burst 20).
	// +optional
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
	// RetrySettings retry failed requests to the provider; without them a
	// failed request fails the reconcile, which backs off and tries again.
	// +optional
	RetrySettings *SecretStoreRetrySettings `json:"retrySettings,omitempty"`
	// RefreshInterval re-validates the store periodically; 0 validates only
	// on change.
	// +optional
	// +kubebuilder:default="10m"
	RefreshInterval *metav1.Duration `json:"refreshInterval,omitempty"`
	// Conditions restrict which namespaces may use a ClusterSecretStore
	// (ignored on a SecretStore). Empty allows every namespace; otherwise a
	// namespace must match at least one condition.
	// +optional
	Conditions []ClusterSecretStoreCondition `json:"conditions,omitempty"`
}

// SecretStoreStatus is the observed state of a store.
type SecretStoreStatus struct {
	// ObservedGeneration is the generation last validated.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, Reconciling, Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Capabilities: ReadOnly, WriteOnly or ReadWrite.
	// +optional
	Capabilities string `json:"capabilities,omitempty"`
	// LastHandledReconcileAt is the last handled value of the
	// strata.dev/reconcile-requested-at annotation.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`
}

// SecretStore says how to reach an external secret store from one
// namespace. Its credentials Secrets are read in its own namespace only.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=strata;externalsecrets,shortName=ss
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="CAPABILITIES",type=string,JSONPath=`.status.capabilities`
// +kubebuilder:printcolumn:name="READY",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
type SecretStore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec SecretStoreSpec `json:"spec"`
	// +optional
	Status SecretStoreStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions for internal/conditions.
func (s *SecretStore) GetConditions() *[]metav1.Condition { return &s.Status.Conditions }

// +kubebuilder:object:root=true

// SecretStoreList is a list of SecretStores.
type SecretStoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SecretStore `json:"items"`
}

// ClusterSecretStore says how to reach an external secret store from the
// namespaces its conditions allow. It is owned by the platform admin.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=strata;externalsecrets,shortName=css
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="CAPABILITIES",type=string,JSONPath=`.status.capabilities`
// +kubebuilder:printcolumn:name="READY",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
type ClusterSecretStore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec SecretStoreSpec `json:"spec"`
	// +optional
	Status SecretStoreStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions for internal/conditions.
func (s *ClusterSecretStore) GetConditions() *[]metav1.Condition { return &s.Status.Conditions }

// +kubebuilder:object:root=true

// ClusterSecretStoreList is a list of ClusterSecretStores.
type ClusterSecretStoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterSecretStore `json:"items"`
}

// GenericStore is what SecretStore and ClusterSecretStore share, so
// controllers and providers handle both alike.
// +kubebuilder:object:generate=false
type GenericStore interface {
	GetName() string
	GetNamespace() string
	GetGeneration() int64
	GetConditions() *[]metav1.Condition
	GetKind() string
	GetSpec() *SecretStoreSpec
	GetStatus() *SecretStoreStatus
}

// GetKind returns SecretStore.
func (s *SecretStore) GetKind() string { return SecretStoreKind }

// GetSpec returns the spec.
func (s *SecretStore) GetSpec() *SecretStoreSpec { return &s.Spec }

// GetStatus returns the status.
func (s *SecretStore) GetStatus() *SecretStoreStatus { return &s.Status }

// GetKind returns ClusterSecretStore.
func (s *ClusterSecretStore) GetKind() string { return ClusterSecretStoreKind }

// GetSpec returns the spec.
func (s *ClusterSecretStore) GetSpec() *SecretStoreSpec { return &s.Spec }

// GetStatus returns the status.
func (s *ClusterSecretStore) GetStatus() *SecretStoreStatus { return &s.Status }

func init() {
	SchemeBuilder.Register(&SecretStore{}, &SecretStoreList{}, &ClusterSecretStore{}, &ClusterSecretStoreList{})
}

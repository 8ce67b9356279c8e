package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ExternalSecret reasons (condition Ready).
const (
	// ReasonSecretSynced: the target Secret holds the store's current values.
	ReasonSecretSynced = "SecretSynced"
	// ReasonSecretSyncedError: the values could not be fetched or written
	// (the store answered with an error, the API server refused the
	// Secret); the last good Secret stays. Retried.
	ReasonSecretSyncedError = "SecretSyncedError"
	// ReasonKeyNotFound: a remote key or property does not exist; the
	// message names the store, key and property. The Secret is not
	// updated, except as deletionPolicy says when the key is gone.
	ReasonKeyNotFound = "KeyNotFound"
	// ReasonSecretDeleted: every remote key is gone and deletionPolicy
	// Delete removed the target Secret.
	ReasonSecretDeleted = "SecretDeleted"
	// ReasonSecretConflict: the target Secret exists and was not created by
	// this ExternalSecret (creationPolicy Owner), or is missing with
	// creationPolicy Merge; it is not touched. Stalled.
	ReasonSecretConflict = "SecretConflict"
	// ReasonStoreNotFound: secretStoreRef names no store.
	ReasonStoreNotFound = "StoreNotFound"
	// ReasonStoreNotReady: the store is not Ready (wrong credentials,
	// unreachable server, invalid configuration).
	ReasonStoreNotReady = "StoreNotReady"
	// ReasonStoreNotAllowed: the ClusterSecretStore's conditions do not
	// allow this namespace. Stalled.
	ReasonStoreNotAllowed = "StoreNotAllowed"
	// ReasonTemplateInvalid: target.template does not parse or does not
	// execute over the fetched values. Stalled.
	ReasonTemplateInvalid = "TemplateInvalid"
	// ReasonInvalidSpec: another error in the spec (a find regexp that
	// does not compile, a find on a store without listing). Stalled.
	ReasonInvalidSpec = "InvalidSpec"
)

// Event reasons of ExternalSecret.
const (
	EventCreated = "Created"
	EventUpdated = "Updated"
	EventDeleted = "Deleted"
)

// ExternalSecretCreationPolicy says how the target Secret is created.
// +kubebuilder:validation:Enum=Owner;Orphan;Merge;None
type ExternalSecretCreationPolicy string

// Creation policies.
const (
	// CreatePolicyOwner creates the Secret with an owner reference to the
	// ExternalSecret (deleted with it) and never writes a Secret created
	// by anyone else.
	CreatePolicyOwner ExternalSecretCreationPolicy = "Owner"
	// CreatePolicyOrphan creates the Secret without an owner reference; it
	// stays when the ExternalSecret is deleted.
	CreatePolicyOrphan ExternalSecretCreationPolicy = "Orphan"
	// CreatePolicyMerge writes the keys into an existing Secret, owning
	// only those keys; it does not create the Secret.
	CreatePolicyMerge ExternalSecretCreationPolicy = "Merge"
	// CreatePolicyNone writes nothing (the values are only checked).
	CreatePolicyNone ExternalSecretCreationPolicy = "None"
)

// ExternalSecretDeletionPolicy says what happens to the target Secret when
// the remote keys disappear.
// +kubebuilder:validation:Enum=Retain;Delete;Merge
type ExternalSecretDeletionPolicy string

// Deletion policies.
const (
	// DeletionPolicyRetain keeps the Secret as it was (Ready=False
	// KeyNotFound).
	DeletionPolicyRetain ExternalSecretDeletionPolicy = "Retain"
	// DeletionPolicyDelete removes the keys that are gone, and the Secret
	// once every key is gone (only a Secret this ExternalSecret created).
	DeletionPolicyDelete ExternalSecretDeletionPolicy = "Delete"
	// DeletionPolicyMerge removes the keys that are gone and keeps the
	// Secret.
	DeletionPolicyMerge ExternalSecretDeletionPolicy = "Merge"
)

// ExternalSecretRefreshPolicy says when the values are fetched again.
// +kubebuilder:validation:Enum=Periodic;OnChange;CreatedOnce
type ExternalSecretRefreshPolicy string

// Refresh policies.
const (
	// RefreshPolicyPeriodic refreshes every refreshInterval (jittered).
	RefreshPolicyPeriodic ExternalSecretRefreshPolicy = "Periodic"
	// RefreshPolicyOnChange refreshes when the ExternalSecret changes (or
	// on the manual refresh annotation).
	RefreshPolicyOnChange ExternalSecretRefreshPolicy = "OnChange"
	// RefreshPolicyCreatedOnce fetches once, when the Secret is created.
	RefreshPolicyCreatedOnce ExternalSecretRefreshPolicy = "CreatedOnce"
)

// ExternalSecretDecodingStrategy says how fetched values are decoded before
// they are written (ESO's decodingStrategy).
// +kubebuilder:validation:Enum=Auto;Base64;Base64URL;None
type ExternalSecretDecodingStrategy string

// Decoding strategies.
const (
	// DecodingNone writes the values as fetched.
	DecodingNone ExternalSecretDecodingStrategy = "None"
	// DecodingBase64 decodes standard base64 (padding optional); a value
	// that is not base64 is an error naming the key.
	DecodingBase64 ExternalSecretDecodingStrategy = "Base64"
	// DecodingBase64URL decodes URL-safe base64 (padding optional).
	DecodingBase64URL ExternalSecretDecodingStrategy = "Base64URL"
	// DecodingAuto decodes base64, then URL-safe base64, and writes the
	// value as fetched when it is neither.
	DecodingAuto ExternalSecretDecodingStrategy = "Auto"
)

// SecretStoreRef names the store an ExternalSecret reads.
type SecretStoreRef struct {
	// Name of the store.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Kind is SecretStore (in the ExternalSecret's namespace) or
	// ClusterSecretStore.
	// +optional
	// +kubebuilder:default=SecretStore
	// +kubebuilder:validation:Enum=SecretStore;ClusterSecretStore
	Kind string `json:"kind,omitempty"`
}

// ExternalSecretTemplateMetadata is metadata of the target Secret.
type ExternalSecretTemplateMetadata struct {
	// Annotations of the Secret.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// Labels of the Secret.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}

// TemplateScope says how a templateFrom item is rendered.
// +kubebuilder:validation:Enum=Values;KeysAndValues
type TemplateScope string

// Template scopes.
const (
	// TemplateScopeValues renders the item's value as the template of the
	// target key of the same name.
	TemplateScopeValues TemplateScope = "Values"
	// TemplateScopeKeysAndValues renders the item into a YAML (or JSON) map
	// whose keys and values are all written.
	TemplateScopeKeysAndValues TemplateScope = "KeysAndValues"
)

// TemplateTarget says where a templateFrom entry's output goes.
// +kubebuilder:validation:Enum=Data;Annotations;Labels
type TemplateTarget string

// Template targets.
const (
	TemplateTargetData        TemplateTarget = "Data"
	TemplateTargetAnnotations TemplateTarget = "Annotations"
	TemplateTargetLabels      TemplateTarget = "Labels"
)

// TemplateRefItem is one key of a template ConfigMap or Secret.
type TemplateRefItem struct {
	// Key in the ConfigMap's or Secret's data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
	// TemplateAs: Values (the item is the template of the key of the same
	// name) or KeysAndValues (the item renders a map of keys and values).
	// +optional
	// +kubebuilder:default=Values
	TemplateAs TemplateScope `json:"templateAs,omitempty"`
}

// TemplateRef names a ConfigMap or Secret of the ExternalSecret's own
// namespace that holds templates.
type TemplateRef struct {
	// Name of the ConfigMap or Secret (in the ExternalSecret's namespace).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Items are the keys used as templates.
	// +required
	// +kubebuilder:validation:MinItems=1
	Items []TemplateRefItem `json:"items"`
}

// TemplateFrom is one source of templates: a ConfigMap, a Secret or a
// literal, rendered over the fetched values like template.data.
// +kubebuilder:validation:XValidation:rule="(has(self.configMap) ? 1 : 0) + (has(self.secret) ? 1 : 0) + (has(self.literal) ? 1 : 0) == 1",message="exactly one of configMap, secret, literal must be set"
type TemplateFrom struct {
	// ConfigMap holding templates.
	// +optional
	ConfigMap *TemplateRef `json:"configMap,omitempty"`
	// Secret holding templates.
	// +optional
	Secret *TemplateRef `json:"secret,omitempty"`
	// Literal is a template that renders a YAML map of keys and values.
	// +optional
	Literal *string `json:"literal,omitempty"`
	// Target: Data (default), Annotations or Labels of the Secret.
	// +optional
	// +kubebuilder:default=Data
	Target TemplateTarget `json:"target,omitempty"`
}

// ExternalSecretTemplate shapes the target Secret. Data values are Go
// templates (text/template with sprig-like helpers) over the fetched values:
// `{{ .password }}`.
type ExternalSecretTemplate struct {
	// Type of the Secret, e.g. kubernetes.io/dockerconfigjson.
	// +optional
	Type corev1.SecretType `json:"type,omitempty"`
	// EngineVersion is accepted for compatibility; only v2 exists.
	// +optional
	// +kubebuilder:default=v2
	// +kubebuilder:validation:Enum=v2
	EngineVersion string `json:"engineVersion,omitempty"`
	// Metadata of the Secret.
	// +optional
	Metadata ExternalSecretTemplateMetadata `json:"metadata,omitempty"`
	// Data maps Secret keys to templates.
	// +optional
	Data map[string]string `json:"data,omitempty"`
	// TemplateFrom lists templates kept in ConfigMaps, Secrets (of the
	// ExternalSecret's namespace) or literals, rendered before data (a key
	// in data wins).
	// +optional
	// +kubebuilder:validation:MaxItems=32
	TemplateFrom []TemplateFrom `json:"templateFrom,omitempty"`
	// MergePolicy Replace writes only the template's keys; Merge also
	// writes the fetched keys the template does not set.
	// +optional
	// +kubebuilder:default=Replace
	// +kubebuilder:validation:Enum=Replace;Merge
	MergePolicy string `json:"mergePolicy,omitempty"`
}

// ExternalSecretTarget is the Secret to write.
type ExternalSecretTarget struct {
	// Name of the Secret; defaults to the ExternalSecret's name.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name,omitempty"`
	// CreationPolicy: Owner, Orphan, Merge or None.
	// +optional
	// +kubebuilder:default=Owner
	CreationPolicy ExternalSecretCreationPolicy `json:"creationPolicy,omitempty"`
	// DeletionPolicy: Retain, Delete or Merge.
	// +optional
	// +kubebuilder:default=Retain
	DeletionPolicy ExternalSecretDeletionPolicy `json:"deletionPolicy,omitempty"`
	// Template shapes the Secret.
	// +optional
	Template *ExternalSecretTemplate `json:"template,omitempty"`
	// Immutable makes the Secret immutable; a changed value then needs a
	// new Secret.
	// +optional
	Immutable bool `json:"immutable,omitempty"`
}

// ExternalSecretDataRemoteRef names a value in the store.
type ExternalSecretDataRemoteRef struct {
	// Key of the secret in the store.
	// +required
	// +kubebuilder:validation:MinLength=1
	Key string `json:"key"`
	// Property of a structured secret.
	// +optional
	Property string `json:"property,omitempty"`
	// Version of the secret; empty is the latest.
	// +optional
	Version string `json:"version,omitempty"`
	// DecodingStrategy: None (default), Base64, Base64URL or Auto.
	// +optional
	// +kubebuilder:default=None
	DecodingStrategy ExternalSecretDecodingStrategy `json:"decodingStrategy,omitempty"`
}

// ExternalSecretData is one value copied into one key of the Secret.
type ExternalSecretData struct {
	// SecretKey is the key in the target Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	SecretKey string `json:"secretKey"`
	// RemoteRef names the value.
	// +required
	RemoteRef ExternalSecretDataRemoteRef `json:"remoteRef"`
}

// FindName matches keys by name.
type FindName struct {
	// RegExp over key names (Go syntax).
	// +optional
	RegExp string `json:"regexp,omitempty"`
}

// ExternalSecretFind selects several secrets of the store.
type ExternalSecretFind struct {
	// Path restricts the search to keys under it.
	// +optional
	Path *string `json:"path,omitempty"`
	// Name matches keys by name.
	// +optional
	Name *FindName `json:"name,omitempty"`
	// Tags must all match.
	// +optional
	Tags map[string]string `json:"tags,omitempty"`
	// DecodingStrategy: None (default), Base64, Base64URL or Auto.
	// +optional
	// +kubebuilder:default=None
	DecodingStrategy ExternalSecretDecodingStrategy `json:"decodingStrategy,omitempty"`
}

// ExternalSecretRewriteRegexp replaces what a regular expression matches in
// every key.
type ExternalSecretRewriteRegexp struct {
	// Source is the regular expression (Go syntax).
	// +required
	// +kubebuilder:validation:MinLength=1
	Source string `json:"source"`
	// Target is the replacement; $1 or ${name} insert submatches.
	// +required
	Target string `json:"target"`
}

// ExternalSecretRewriteTransform renders every key with a Go template in
// which .value is the key.
type ExternalSecretRewriteTransform struct {
	// Template over .value, e.g. `{{ .value | upper }}`.
	// +required
	// +kubebuilder:validation:MinLength=1
	Template string `json:"template"`
}

// ExternalSecretRewrite is one rewrite of the keys a dataFrom entry
// returns.
// +kubebuilder:validation:XValidation:rule="(has(self.regexp) ? 1 : 0) + (has(self.transform) ? 1 : 0) == 1",message="exactly one of regexp, transform must be set"
type ExternalSecretRewrite struct {
	// Regexp replaces matches in the keys.
	// +optional
	Regexp *ExternalSecretRewriteRegexp `json:"regexp,omitempty"`
	// Transform renders the keys with a template.
	// +optional
	Transform *ExternalSecretRewriteTransform `json:"transform,omitempty"`
}

// ExternalSecretDataFromRemoteRef copies many values at once.
// +kubebuilder:validation:XValidation:rule="(has(self.extract) ? 1 : 0) + (has(self.find) ? 1 : 0) == 1",message="exactly one of extract, find must be set"
type ExternalSecretDataFromRemoteRef struct {
	// Extract copies every field of one structured secret.
	// +optional
	Extract *ExternalSecretDataRemoteRef `json:"extract,omitempty"`
	// Find copies every secret it selects, keyed by name.
	// +optional
	Find *ExternalSecretFind `json:"find,omitempty"`
	// Rewrite changes the keys extract or find returns, in order, before
	// they are written (a find's "/" become "_" only without a rewrite).
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Rewrite []ExternalSecretRewrite `json:"rewrite,omitempty"`
}

// ExternalSecretSpec is what to fetch and where to write it.
// +kubebuilder:validation:XValidation:rule="has(self.data) || has(self.dataFrom)",message="one of data, dataFrom must be set"
type ExternalSecretSpec struct {
	// SecretStoreRef names the store.
	// +required
	SecretStoreRef SecretStoreRef `json:"secretStoreRef"`
	// Target is the Secret to write.
	// +optional
	Target ExternalSecretTarget `json:"target,omitempty"`
	// RefreshInterval between fetches (jittered); 0 fetches once.
	// +optional
	// +kubebuilder:default="1h"
	RefreshInterval *metav1.Duration `json:"refreshInterval,omitempty"`
	// RefreshPolicy: Periodic, OnChange or CreatedOnce.
	// +optional
	// +kubebuilder:default=Periodic
	RefreshPolicy ExternalSecretRefreshPolicy `json:"refreshPolicy,omitempty"`
	// Data lists values copied one by one.
	// +optional
	// +listType=map
	// +listMapKey=secretKey
	Data []ExternalSecretData `json:"data,omitempty"`
	// DataFrom lists many values copied at once.
	// +optional
	DataFrom []ExternalSecretDataFromRemoteRef `json:"dataFrom,omitempty"`
}

// ExternalSecretStatus is the observed state of an ExternalSecret.
type ExternalSecretStatus struct {
	// ObservedGeneration is the generation last synced successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, Reconciling, Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// RefreshTime is when the values were last fetched successfully.
	// +optional
	RefreshTime metav1.Time `json:"refreshTime,omitempty"`
	// SyncedResourceVersion is the generation and spec hash the target was
	// last written for.
	// +optional
	SyncedResourceVersion string `json:"syncedResourceVersion,omitempty"`
	// Binding names the target Secret.
	// +optional
	Binding corev1.LocalObjectReference `json:"binding,omitempty"`
	// SyncedKeys lists the Secret keys this ExternalSecret wrote last.
	// +optional
	SyncedKeys []string `json:"syncedKeys,omitempty"`
	// LastHandledReconcileAt is the last handled value of the
	// strata.dev/reconcile-requested-at annotation.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`
}

// ExternalSecret copies values of an external store into a Kubernetes
// Secret and keeps them current.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=strata;externalsecrets,shortName=es
// +kubebuilder:printcolumn:name="STORE",type=string,JSONPath=`.spec.secretStoreRef.name`
// +kubebuilder:printcolumn:name="REFRESH",type=string,JSONPath=`.spec.refreshInterval`
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="READY",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type ExternalSecret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec ExternalSecretSpec `json:"spec"`
	// +optional
	Status ExternalSecretStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions for internal/conditions.
func (e *ExternalSecret) GetConditions() *[]metav1.Condition { return &e.Status.Conditions }

// TargetName is the name of the Secret the ExternalSecret writes.
func (e *ExternalSecret) TargetName() string {
	if e.Spec.Target.Name != "" {
		return e.Spec.Target.Name
	}
	return e.Name
}

// StoreKind is the kind secretStoreRef names, defaulted.
func (e *ExternalSecret) StoreKind() string {
	if e.Spec.SecretStoreRef.Kind == "" {
		return SecretStoreKind
	}
	return e.Spec.SecretStoreRef.Kind
}

// +kubebuilder:object:root=true

// ExternalSecretList is a list of ExternalSecrets.
type ExternalSecretList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ExternalSecret `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ExternalSecret{}, &ExternalSecretList{})
}

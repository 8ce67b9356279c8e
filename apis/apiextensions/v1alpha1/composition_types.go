package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Valid is the condition type of Compositions and CompositionRevisions: True
// when every expression compiles and type-checks, False (reason
// CompositionInvalid) with a message naming the resource, field and
// expression otherwise.
const Valid = "Valid"

// Reasons of the Valid condition.
const (
	// ReasonValidated: the Composition passed the publish-time checks.
	ReasonValidated = "Validated"
	// ReasonCompositionInvalid: an expression, reference or the graph is wrong.
	ReasonCompositionInvalid = "CompositionInvalid"
	// ReasonCompositeTypeNotFound: no XRD defines the composite type (yet).
	ReasonCompositeTypeNotFound = "CompositeTypeNotFound"
)

// Labels Strata sets.
const (
	// LabelCompositionName is set on a CompositionRevision to its Composition.
	LabelCompositionName = "strata.dev/composition-name"
	// LabelCompositionHash is set on a CompositionRevision to the hash of its spec.
	LabelCompositionHash = "strata.dev/composition-hash"
)

// ForEach makes one composed resource per element of a list.
type ForEach struct {
	// Variable is the name under which the element is visible in the
	// template (its index is `<variable>Index`).
	// +optional
	// +kubebuilder:default=each
	// +kubebuilder:validation:Pattern=`^[a-z][a-zA-Z0-9_]*$`
	Variable string `json:"variable,omitempty"`
	// In is an expression, `${...}`, giving a list.
	// +required
	// +kubebuilder:validation:MinLength=1
	In string `json:"in"`
}

// ComposedTemplate is one resource of a Composition.
type ComposedTemplate struct {
	// Name identifies the resource; other resources reference its observed
	// state by this name in expressions, so it is a CEL identifier.
	// +required
	// +kubebuilder:validation:Pattern=`^[a-z][a-zA-Z0-9_]*$`
	// +kubebuilder:validation:MaxLength=40
	Name string `json:"name"`
	// Template is the object to compose. Strings containing ${expr} are CEL.
	// +required
	// +kubebuilder:pruning:PreserveUnknownFields
	Template runtime.RawExtension `json:"template"`
	// ReadyWhen are boolean expressions that must all hold for the resource
	// to count as ready (default: its Ready condition is True, or it exists
	// if it has no conditions).
	// +optional
	ReadyWhen []string `json:"readyWhen,omitempty"`
	// IncludeWhen are boolean expressions that must all hold for the
	// resource to exist; when one turns false the resource is deleted.
	// +optional
	IncludeWhen []string `json:"includeWhen,omitempty"`
	// ForEach makes one resource per element of a list.
	// +optional
	ForEach *ForEach `json:"forEach,omitempty"`
	// AllowedNamespaces are the namespaces, besides the claim's own, where
	// this resource may be composed for a claim. Entries are names or
	// patterns where `*` matches any run of characters and `?` one
	// (`team-*`). Without it, a namespaced resource composed for a claim
	// must be in the claim's namespace; one rendered elsewhere is not
	// applied and the composite reports Synced=False, reason
	// NamespaceNotAllowed. Only the platform team that writes the
	// Composition sets it; claims cannot. It does not apply to cluster-scoped
	// resources or to composites created without a claim.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[-a-z0-9*?]+$`
	AllowedNamespaces []string `json:"allowedNamespaces,omitempty"`
}

// EnvironmentSource selects EnvironmentConfigs whose data is merged into the
// `environment` variable, in name order.
type EnvironmentSource struct {
	// Selector of EnvironmentConfigs by label.
	// +required
	Selector metav1.LabelSelector `json:"selector"`
}

// CompositionSpec is how a composite kind is composed.
type CompositionSpec struct {
	// CompositeTypeRef is the XR kind this Composition composes.
	// +required
	CompositeTypeRef TypeReference `json:"compositeTypeRef"`
	// Resources are the composed resources.
	// +required
	// +listType=map
	// +listMapKey=name
	Resources []ComposedTemplate `json:"resources"`
	// Status holds XR status fields whose string values are expressions.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	Status *runtime.RawExtension `json:"status,omitempty"`
	// ConnectionDetails maps keys of the connection Secret to expressions.
	// +optional
	ConnectionDetails map[string]string `json:"connectionDetails,omitempty"`
	// Environment selects EnvironmentConfigs.
	// +optional
	Environment *EnvironmentSource `json:"environment,omitempty"`
}

// CompositionStatus is the observed state of a Composition.
type CompositionStatus struct {
	// Conditions: Valid, Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ObservedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// LatestRevision is the number of the newest valid CompositionRevision.
	// +optional
	LatestRevision int64 `json:"latestRevision,omitempty"`
	// LatestRevisionName is the name of the newest valid CompositionRevision.
	// +optional
	LatestRevisionName string `json:"latestRevisionName,omitempty"`
}

// Composition turns a composite resource into composed resources.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=comp,categories=strata
// +kubebuilder:printcolumn:name="XR-KIND",type=string,JSONPath=`.spec.compositeTypeRef.kind`
// +kubebuilder:printcolumn:name="VALID",type=string,JSONPath=`.status.conditions[?(@.type=='Valid')].status`
// +kubebuilder:printcolumn:name="REVISION",type=integer,JSONPath=`.status.latestRevision`
// +kubebuilder:printcolumn:name="STATUS",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=='Valid')].message`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type Composition struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec CompositionSpec `json:"spec"`
	// +optional
	Status CompositionStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions for the conditions helpers.
func (c *Composition) GetConditions() *[]metav1.Condition { return &c.Status.Conditions }

// +kubebuilder:object:root=true

// CompositionList is a list of Compositions.
type CompositionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Composition `json:"items"`
}

// CompositionRevisionSpec is an immutable snapshot of a Composition's spec.
type CompositionRevisionSpec struct {
	// Revision number, increasing per Composition.
	// +required
	// +kubebuilder:validation:Minimum=1
	Revision int64 `json:"revision"`
	// CompositionSpec is the snapshot.
	CompositionSpec `json:",inline"`
}

// CompositionRevisionStatus is the observed state of a revision.
type CompositionRevisionStatus struct {
	// Conditions: Valid.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// CompositionRevision is an immutable numbered snapshot of a Composition.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=comprev,categories=strata
// +kubebuilder:printcolumn:name="REVISION",type=integer,JSONPath=`.spec.revision`
// +kubebuilder:printcolumn:name="XR-KIND",type=string,JSONPath=`.spec.compositeTypeRef.kind`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type CompositionRevision struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a CompositionRevision is immutable"
	Spec CompositionRevisionSpec `json:"spec"`
	// +optional
	Status CompositionRevisionStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions for the conditions helpers.
func (c *CompositionRevision) GetConditions() *[]metav1.Condition { return &c.Status.Conditions }

// +kubebuilder:object:root=true

// CompositionRevisionList is a list of CompositionRevisions.
type CompositionRevisionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CompositionRevision `json:"items"`
}

// EnvironmentConfig holds data that Compositions read as `environment`.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=envcfg,categories=strata
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type EnvironmentConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Data is any JSON object.
	// +optional
	Data map[string]apiextensionsv1.JSON `json:"data,omitempty"`
}

// +kubebuilder:object:root=true

// EnvironmentConfigList is a list of EnvironmentConfigs.
type EnvironmentConfigList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EnvironmentConfig `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Composition{}, &CompositionList{}, &CompositionRevision{}, &CompositionRevisionList{},
		&EnvironmentConfig{}, &EnvironmentConfigList{})
}

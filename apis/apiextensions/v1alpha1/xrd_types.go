package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Condition types of a CompositeResourceDefinition.
const (
	// Established is True when the CRD of the composite kind is served.
	Established = "Established"
	// Offered is True when the CRD of the claim kind is served.
	Offered = "Offered"
)

// Reasons of the Established and Offered conditions.
const (
	// ReasonWatchingComposite: the XR CRD is served and XRs are reconciled.
	ReasonWatchingComposite = "WatchingCompositeResource"
	// ReasonOfferingClaims: the claim CRD is served and claims are reconciled.
	ReasonOfferingClaims = "OfferingClaims"
	// ReasonTerminating: the XRD is being deleted and waits for its instances to be gone.
	ReasonTerminating = "Terminating"
	// ReasonInvalidSchema: the XRD's schema cannot make a valid CRD.
	ReasonInvalidSchema = "InvalidSchema"
	// ReasonPending: the CRD was applied and is not served yet.
	ReasonPending = "Pending"
	// ReasonCRDConflict: a CRD of the XRD's name exists and was not created
	// by this XRD (a provider's, or another XRD's). The XRD never adopts it:
	// the CRD and its objects are left unchanged, and deleting the XRD does
	// not delete it. The message names the CRD's current owner. Its owner
	// may hand it over with the strata.dev/adopt annotation set to
	// "CompositeResourceDefinition/<xrd name>".
	ReasonCRDConflict = "CRDConflict"
)

// Reasons of the Synced condition of composite resources and claims (the
// Synced condition and its shared reasons are in internal/conditions).
const (
	// ReasonCompositionMismatch: the Composition selected for a composite
	// (by compositionRef, compositionSelector, the XRD's enforced or default
	// ref) or the pinned compositionRevisionRef was written for another
	// composite kind (its compositeTypeRef group or kind differs), or the
	// revision belongs to another Composition. Nothing is composed.
	ReasonCompositionMismatch = "CompositionMismatch"
	// ReasonCompositionNotAllowed: a claim chose (by compositionRef or
	// compositionSelector) a Composition outside its XRD's
	// claimCompositionSelector. The claim's composite is left unchanged.
	ReasonCompositionNotAllowed = "CompositionNotAllowed"
	// ReasonClaimNotAllowed: a claim's spec.resourceRef names an existing
	// composite resource that is bound to no claim and does not list the
	// claim's namespace in its strata.dev/claim-namespaces annotation. The
	// composite is left unchanged.
	ReasonClaimNotAllowed = "ClaimNotAllowed"
	// ReasonComposedResourceFailed (Ready=False, Stalled=True on a composite
	// and its claim): a composed resource failed and will not become ready
	// by itself: it is Stalled (a managed resource refused by its
	// ProviderConfig or finding someone else's external resource, say) or
	// kstatus calls it Failed (a Deployment past its progress deadline).
	// The message names each such resource with its own reason and message.
	// It clears once the resource recovers.
	ReasonComposedResourceFailed = "ComposedResourceFailed"
)

// AnnotationClaimNamespaces is set by a cluster admin on a composite resource
// it created to let claims bind it through spec.resourceRef: a comma-separated
// list of namespaces whose claims may bind it, or "*" for any namespace.
// Without it, only the claim that created a composite is bound to it.
const AnnotationClaimNamespaces = "strata.dev/claim-namespaces"

// Labels the composition engine sets on every object composed for a claim
// (overriding any a template sets), naming the claim. Other controllers may
// rely on them: the managed-resource runtime reads LabelClaimNamespace to
// hold a ProviderConfig's allowedClaimNamespaces.
const (
	LabelClaimName      = "strata.dev/claim-name"
	LabelClaimNamespace = "strata.dev/claim-namespace"
)

// CompositeResourceScope says whether XRs are cluster-scoped or namespaced.
// +kubebuilder:validation:Enum=Cluster;Namespaced
type CompositeResourceScope string

// Scopes of composite resources.
const (
	ScopeCluster    CompositeResourceScope = "Cluster"
	ScopeNamespaced CompositeResourceScope = "Namespaced"
)

// UpdatePolicy says whether XRs follow new Composition revisions.
// +kubebuilder:validation:Enum=Automatic;Manual
type UpdatePolicy string

// Update policies.
const (
	UpdateAutomatic UpdatePolicy = "Automatic"
	UpdateManual    UpdatePolicy = "Manual"
)

// CompositionReference names a Composition.
type CompositionReference struct {
	// Name of the Composition.
	// +required
	Name string `json:"name"`
}

// CompositeResourceValidation holds the schema of one version.
type CompositeResourceValidation struct {
	// OpenAPIV3Schema of the XR's spec and status (the properties of the
	// object; Strata adds its reserved fields).
	// +required
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	OpenAPIV3Schema runtime.RawExtension `json:"openAPIV3Schema"`
}

// CompositeResourceDefinitionVersion is one version of the composite kind.
type CompositeResourceDefinitionVersion struct {
	// Name of the version, e.g. v1alpha1.
	// +required
	Name string `json:"name"`
	// Served says whether the version is served by the API server.
	// +required
	Served bool `json:"served"`
	// Referenceable marks the version Compositions are written against; exactly one is.
	// +required
	Referenceable bool `json:"referenceable"`
	// Schema of this version.
	// +optional
	Schema *CompositeResourceValidation `json:"schema,omitempty"`
	// AdditionalPrinterColumns are added after Strata's own columns.
	// +optional
	AdditionalPrinterColumns []apiextensionsv1.CustomResourceColumnDefinition `json:"additionalPrinterColumns,omitempty"`
}

// CompositeResourceDefinitionSpec defines a composite kind and, optionally, its claim.
// +kubebuilder:validation:XValidation:rule="!has(self.claimNames) || self.scope == 'Cluster'",message="claimNames needs scope Cluster"
type CompositeResourceDefinitionSpec struct {
	// Group of the composite and claim kinds.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="group is immutable"
	Group string `json:"group"`
	// Names of the composite kind.
	// +required
	Names apiextensionsv1.CustomResourceDefinitionNames `json:"names"`
	// ClaimNames, when set, offer a namespaced claim kind.
	// +optional
	ClaimNames *apiextensionsv1.CustomResourceDefinitionNames `json:"claimNames,omitempty"`
	// Scope of the composite kind.
	// +optional
	// +kubebuilder:default=Cluster
	Scope CompositeResourceScope `json:"scope,omitempty"`
	// Versions of the composite kind.
	// +required
	// +kubebuilder:validation:MinItems=1
	Versions []CompositeResourceDefinitionVersion `json:"versions"`
	// ConnectionSecretKeys are the keys of connection details published.
	// +optional
	ConnectionSecretKeys []string `json:"connectionSecretKeys,omitempty"`
	// DefaultCompositionRef is used when an XR selects no Composition.
	// +optional
	DefaultCompositionRef *CompositionReference `json:"defaultCompositionRef,omitempty"`
	// EnforcedCompositionRef is used by every XR, whatever it selects.
	// +optional
	EnforcedCompositionRef *CompositionReference `json:"enforcedCompositionRef,omitempty"`
	// ClaimCompositionSelector restricts the Compositions that claims may
	// choose, with spec.compositionRef or spec.compositionSelector, to those
	// whose labels match it. A claim choosing another Composition is refused
	// with Synced=False, reason CompositionNotAllowed, and its composite is
	// left unchanged. The enforced and default refs, which the platform team
	// sets, are not restricted; neither are composites created without a
	// claim. Unset: claims may choose any Composition of the composite kind.
	// +optional
	ClaimCompositionSelector *metav1.LabelSelector `json:"claimCompositionSelector,omitempty"`
	// DefaultCompositionUpdatePolicy is used when an XR sets none.
	// +optional
	// +kubebuilder:default=Automatic
	DefaultCompositionUpdatePolicy UpdatePolicy `json:"defaultCompositionUpdatePolicy,omitempty"`
}

// ControllerStatus names the kinds an XRD serves.
type ControllerStatus struct {
	// CompositeResourceType is the XR kind.
	// +optional
	CompositeResourceType TypeReference `json:"compositeResourceType,omitempty"`
	// CompositeResourceClaimType is the claim kind.
	// +optional
	CompositeResourceClaimType TypeReference `json:"compositeResourceClaimType,omitempty"`
}

// TypeReference names a kind.
type TypeReference struct {
	// APIVersion of the kind.
	// +required
	APIVersion string `json:"apiVersion"`
	// Kind name.
	// +required
	Kind string `json:"kind"`
}

// CompositeResourceDefinitionStatus is the observed state of an XRD.
type CompositeResourceDefinitionStatus struct {
	// Conditions: Established, Offered, Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ObservedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Controllers names the served kinds.
	// +optional
	Controllers ControllerStatus `json:"controllers,omitempty"`
}

// CompositeResourceDefinition defines a composite resource kind and its claim.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=xrd;xrds,categories=strata
// +kubebuilder:printcolumn:name="ESTABLISHED",type=string,JSONPath=`.status.conditions[?(@.type=='Established')].status`
// +kubebuilder:printcolumn:name="OFFERED",type=string,JSONPath=`.status.conditions[?(@.type=='Offered')].status`
// +kubebuilder:printcolumn:name="READY",type=string,JSONPath=`.status.conditions[?(@.type=='Ready')].status`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type CompositeResourceDefinition struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec CompositeResourceDefinitionSpec `json:"spec"`
	// +optional
	Status CompositeResourceDefinitionStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions for the conditions helpers.
func (x *CompositeResourceDefinition) GetConditions() *[]metav1.Condition {
	return &x.Status.Conditions
}

// ReferenceableVersion returns the version Compositions are written against.
func (x *CompositeResourceDefinition) ReferenceableVersion() *CompositeResourceDefinitionVersion {
	for i := range x.Spec.Versions {
		if x.Spec.Versions[i].Referenceable {
			return &x.Spec.Versions[i]
		}
	}
	if len(x.Spec.Versions) > 0 {
		return &x.Spec.Versions[0]
	}
	return nil
}

// +kubebuilder:object:root=true

// CompositeResourceDefinitionList is a list of XRDs.
type CompositeResourceDefinitionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CompositeResourceDefinition `json:"items"`
}

func init() {
	SchemeBuilder.Register(&CompositeResourceDefinition{}, &CompositeResourceDefinitionList{})
}

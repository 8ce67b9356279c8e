package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DeletionPolicy says what happens to the external resource when its managed
// resource is deleted.
// +kubebuilder:validation:Enum=Delete;Orphan
type DeletionPolicy string

const (
	// DeletionDelete removes the external resource and waits until it is gone.
	DeletionDelete DeletionPolicy = "Delete"
	// DeletionOrphan leaves the external resource in place.
	DeletionOrphan DeletionPolicy = "Orphan"
)

// ManagementAction is one thing Strata may do to an external resource.
// +kubebuilder:validation:Enum="*";Observe;Create;Update;Delete;LateInitialize
type ManagementAction string

const (
	// ManagementAll allows every action.
	ManagementAll ManagementAction = "*"
	// ManagementObserve reads the external resource into status.atProvider.
	ManagementObserve ManagementAction = "Observe"
	// ManagementCreate creates the external resource when it does not exist.
	ManagementCreate ManagementAction = "Create"
	// ManagementUpdate corrects drift of the external resource.
	ManagementUpdate ManagementAction = "Update"
	// ManagementDelete deletes the external resource with deletionPolicy Delete.
	ManagementDelete ManagementAction = "Delete"
	// ManagementLateInitialize fills unset spec.forProvider fields from the
	// observed state.
	ManagementLateInitialize ManagementAction = "LateInitialize"
)

// ManagementPolicies is the set of actions Strata may take.
type ManagementPolicies []ManagementAction

// Allows reports whether the policies allow an action. An empty list means
// ["*"].
func (p ManagementPolicies) Allows(a ManagementAction) bool {
	if len(p) == 0 {
		return true
	}
	for _, x := range p {
		if x == ManagementAll || x == a {
			return true
		}
	}
	return false
}

// Reference names another cluster-scoped object.
type Reference struct {
	// Name of the referenced object.
	// +required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// Selector selects one object by labels.
type Selector struct {
	// MatchLabels the selected object must carry.
	// +optional
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// SecretReference names a Secret.
type SecretReference struct {
	// Name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Namespace of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	Namespace string `json:"namespace"`
}

// SecretKeySelector names one key of a Secret.
type SecretKeySelector struct {
	SecretReference `json:",inline"`
	// Key within the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	Key string `json:"key"`
}

// ResourceSpec is the part of the spec every managed resource shares.
type ResourceSpec struct {
	// ProviderConfigReference names the ProviderConfig that says how to
	// connect to the external system.
	// +optional
	// +kubebuilder:default={"name":"default"}
	ProviderConfigReference *Reference `json:"providerConfigRef,omitempty"`

	// DeletionPolicy says whether deleting this resource deletes the external
	// resource (Delete) or leaves it (Orphan).
	// +optional
	// +kubebuilder:default=Delete
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// ManagementPolicies are the actions Strata may take on the external
	// resource. ["*"] allows all; ["Observe"] imports an existing resource
	// and never changes it.
	// +optional
	// +kubebuilder:default={"*"}
	ManagementPolicies ManagementPolicies `json:"managementPolicies,omitempty"`

	// WriteConnectionSecretToReference names the Secret the connection
	// details (endpoint, port, username, password...) are written to.
	// +optional
	WriteConnectionSecretToReference *SecretReference `json:"writeConnectionSecretToRef,omitempty"`
}

// ResourceStatus is the part of the status every managed resource shares.
type ResourceStatus struct {
	// ObservedGeneration is the generation the last successful reconcile saw.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// CreatedAt is when the last external create call returned (with the
	// status written by the same reconcile). A create-pending annotation
	// newer than it marks a create that was interrupted: the resource the
	// next reconcile finds is adopted.
	// +optional
	CreatedAt *metav1.Time `json:"createdAt,omitempty"`

	// Conditions: Ready (Available, Creating, Deleting, Unavailable), Synced
	// (ReconcileSuccess, ReconcileError, DriftDetected, ReferenceNotReady,
	// ResourceConflict, ProviderConfigNotAllowed), Reconciling and Stalled
	// (InvalidSpec, Rejected: only a spec change helps; ResourceConflict:
	// someone else's external resource has this name; ProviderConfigNotAllowed:
	// the ProviderConfig refuses the claim's namespace).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ProviderConfigUsage says who may use a ProviderConfig; every provider's
// ProviderConfig spec embeds it.
type ProviderConfigUsage struct {
	// AllowedClaimNamespaces lists the namespaces whose claims may use this
	// ProviderConfig: a managed resource composed for a claim in any other
	// namespace (its strata.dev/claim-namespace label, which the composition
	// engine sets) is refused before anything reaches the external system,
	// with Synced=False and Stalled, reason ProviderConfigNotAllowed. "*"
	// allows every namespace. Unset, every namespace may: set it on each
	// ProviderConfig of a cluster shared by teams, so that a claimant who
	// may choose a ProviderConfig by name (a Composition that passes a
	// parameter on to providerConfigRef) cannot use another team's server
	// or credentials. Managed resources created directly, and those of
	// composites no claim owns, are not restricted: only whoever may create
	// these cluster-scoped objects writes them.
	// +optional
	// +listType=set
	AllowedClaimNamespaces []string `json:"allowedClaimNamespaces,omitempty"`
}

// ProviderConfigStatus is the status every ProviderConfig shares.
type ProviderConfigStatus struct {
	// ObservedGeneration is the generation the last reconcile saw.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Users is how many managed resources use this ProviderConfig.
	// +optional
	Users int64 `json:"users,omitempty"`
	// Conditions: Ready (Available, InUse, ConnectionFailed: the provider
	// cannot log in to the server with these credentials).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GitRepository reasons.
const (
	// ReasonSucceeded: the revision was fetched and stored.
	ReasonSucceeded = "Succeeded"
	// ReasonGitOperationFailed: cloning or fetching failed (unreachable URL,
	// wrong credentials, missing ref).
	ReasonGitOperationFailed = "GitOperationFailed"
	// ReasonAuthenticationFailed: the secretRef is missing or malformed.
	ReasonAuthenticationFailed = "AuthenticationFailed"
	// ReasonStorageOperationFailed: the artifact could not be written.
	ReasonStorageOperationFailed = "StorageOperationFailed"
	// ReasonNewRevision: a new revision is being fetched.
	ReasonNewRevision = "NewRevision"
	// ReasonSuspended: spec.suspend is true.
	ReasonSuspended = "Suspended"
	// ReasonFileURLNotAllowed: the URL reads the manager's disk (file:// or
	// a bare path) outside the folders the manager allows with
	// --allow-file-urls; the GitRepository is Stalled until its URL changes.
	ReasonFileURLNotAllowed = "FileURLNotAllowed"
)

// Event reasons of GitRepository.
const (
	EventNewArtifact        = "NewArtifact"
	EventGitOperationFailed = "GitOperationFailed"
)

// GitRepositoryRef selects what to check out. At most one field is used, in
// the order commit, semver, tag, branch; empty means branch "main".
type GitRepositoryRef struct {
	// Branch to follow.
	// +optional
	Branch string `json:"branch,omitempty"`
	// Tag to check out.
	// +optional
	Tag string `json:"tag,omitempty"`
	// SemVer range (e.g. ">=1.0.0 <2.0.0"); the highest matching tag wins.
	// +optional
	SemVer string `json:"semver,omitempty"`
	// Commit SHA-1 to check out. With branch, the branch is fetched and the
	// commit must be on it.
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{7,40}$`
	Commit string `json:"commit,omitempty"`
}

// GitRepositorySpec is where and how to fetch a Git repository.
type GitRepositorySpec struct {
	// URL of the repository: https://, http://, ssh:// (or user@host:path) and
	// file:// for local repositories.
	// +required
	// +kubebuilder:validation:Pattern=`^(https?://|ssh://|file://|[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:).+`
	URL string `json:"url"`
	// Ref to check out; defaults to branch main.
	// +optional
	// +kubebuilder:validation:XValidation:rule="(has(self.branch) && self.branch != '' ? 1 : 0) + (has(self.tag) && self.tag != '' ? 1 : 0) + (has(self.semver) && self.semver != '' ? 1 : 0) <= 1",message="at most one of branch, tag and semver may be set"
	Ref *GitRepositoryRef `json:"ref,omitempty"`
	// Interval between fetches.
	// +optional
	// +kubebuilder:default="1m"
	Interval metav1.Duration `json:"interval,omitempty"`
	// Timeout of one Git operation.
	// +optional
	// +kubebuilder:default="60s"
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// SecretRef names a Secret in the same namespace with credentials:
	// `username` and `password` (basic auth), `bearerToken`, or `identity`
	// (an SSH private key) with `known_hosts`.
	// +optional
	SecretRef *corev1.LocalObjectReference `json:"secretRef,omitempty"`
	// WebhookSecretRef names a Secret in the same namespace whose `token`
	// verifies push webhooks for this repository (GitHub HMAC signature,
	// GitLab token, or a generic HMAC signature); without it webhooks for
	// this repository are refused.
	// +optional
	WebhookSecretRef *corev1.LocalObjectReference `json:"webhookSecretRef,omitempty"`
	// Ignore lists paths to leave out of the artifact, in .gitignore syntax.
	// `.git/` is always left out.
	// +optional
	Ignore *string `json:"ignore,omitempty"`
	// Suspend stops fetching; the last artifact stays available.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// Artifact is one fetched revision in the artifact store.
type Artifact struct {
	// Revision is `<branch or tag>@sha1:<40 hex>`, or `sha1:<40 hex>` for a
	// commit.
	// +required
	Revision string `json:"revision"`
	// Digest of the stored files, `sha256:<hex>`; it names the artifact in
	// the store.
	// +required
	Digest string `json:"digest"`
	// LastUpdateTime is when the artifact was stored.
	// +required
	LastUpdateTime metav1.Time `json:"lastUpdateTime"`
}

// GitRepositoryStatus is the observed state of a GitRepository.
type GitRepositoryStatus struct {
	// ObservedGeneration is the generation last reconciled successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, Reconciling, Stalled, ArtifactInStorage.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Artifact is the last fetched revision.
	// +optional
	Artifact *Artifact `json:"artifact,omitempty"`
	// LastHandledReconcileAt is the last handled value of the
	// strata.dev/reconcile-requested-at annotation.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`
}

// GitRepository is a Git repository that Strata fetches on an interval into
// a local artifact store, for Syncs to build from.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=gitrepo,categories=strata
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.url`
// +kubebuilder:printcolumn:name="REVISION",type=string,JSONPath=`.status.artifact.revision`
// +kubebuilder:printcolumn:name="READY",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type GitRepository struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec GitRepositorySpec `json:"spec"`
	// +optional
	Status GitRepositoryStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions for internal/conditions.
func (g *GitRepository) GetConditions() *[]metav1.Condition { return &g.Status.Conditions }

// +kubebuilder:object:root=true

// GitRepositoryList is a list of GitRepositories.
type GitRepositoryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GitRepository `json:"items"`
}

func init() {
	SchemeBuilder.Register(&GitRepository{}, &GitRepositoryList{})
}

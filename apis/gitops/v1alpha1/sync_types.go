package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Sync reasons (condition Ready unless said otherwise).
const (
	// ReasonReconciliationSucceeded: the revision was applied and is healthy.
	ReasonReconciliationSucceeded = "ReconciliationSucceeded"
	// ReasonArtifactFailed: the source has no artifact yet or it cannot be read.
	ReasonArtifactFailed = "ArtifactFailed"
	// ReasonBuildFailed: the path did not build (invalid YAML, kustomize
	// error, missing decryption key).
	ReasonBuildFailed = "BuildFailed"
	// ReasonApplyFailed: the API server rejected an object.
	ReasonApplyFailed = "ApplyFailed"
	// ReasonHealthCheckFailed: an object did not become healthy in time, or
	// can no longer become healthy.
	ReasonHealthCheckFailed = "HealthCheckFailed"
	// ReasonDependencyNotReady: a dependsOn entry is not ready yet.
	ReasonDependencyNotReady = "DependencyNotReady"
	// ReasonDependencyFailed: a dependsOn entry cannot be read as the Sync's
	// service account (forbidden) or its readyWhen cannot be evaluated.
	ReasonDependencyFailed = "DependencyFailed"
	// ReasonCrossNamespaceRefNotAllowed: the manager runs with
	// --no-cross-namespace-refs and sourceRef or dependsOn names another
	// namespace (Stalled).
	ReasonCrossNamespaceRefNotAllowed = "CrossNamespaceRefNotAllowed"
	// ReasonResourceConflict: an object of the revision exists and belongs
	// to someone else (another Sync, a composite, or a writer outside
	// Strata); it is not modified and nothing is pruned until the conflict
	// is resolved or the owner hands the object over with the
	// strata.dev/adopt annotation.
	ReasonResourceConflict = "ResourceConflict"
	// ReasonReadyWhenInvalid: a dependsOn readyWhen expression does not
	// compile or exceeds the CEL cost limit (with Stalled=True), or cannot be
	// evaluated against its object, e.g. it reads a field that is not there
	// (retried). The message names the expression.
	ReasonReadyWhenInvalid = "ReadyWhenInvalid"
	// ReasonPruneFailed: an object that left the inventory could not be
	// deleted, or pruning was refused by a safety rule.
	ReasonPruneFailed = "PruneFailed"
	// ReasonRolledBack: the revision failed its health check and the last
	// healthy revision was applied again.
	ReasonRolledBack = "RolledBack"
	// ReasonAlertFiring: an alert matching spec.rollback.onAlerts fired and
	// the Sync was rolled back (condition RolledBack, with Ready=False reason
	// RolledBack); the message names the alert and both revisions.
	ReasonAlertFiring = "AlertFiring"
	// ReasonProgressing: applying or waiting for health.
	ReasonProgressing = "Progressing"
	// ReasonRolloutAborted: a Rollout (delivery.strata.dev) that rolls out a
	// Deployment of the revision aborted the revision's pod template, and
	// all traffic went back to the stable revision (with Stalled=True and
	// condition Healthy=False). The message names the Rollout and both
	// revisions. The Sync does not retry it: the next commit that changes
	// the template starts a fresh rollout.
	ReasonRolloutAborted = "RolloutAborted"
)

// Event reasons of Sync.
const (
	EventApplied    = "Applied"
	EventPruned     = "Pruned"
	EventRolledBack = "RolledBack"
)

// Prune policies.
const (
	// PruneEnabled deletes objects that left the inventory, unless the build
	// became empty.
	PruneEnabled = "enabled"
	// PruneDisabled never deletes.
	PruneDisabled = "disabled"
	// PruneAllowEmpty also prunes when the build has no object at all.
	PruneAllowEmpty = "allowEmpty"
)

// SourceReference names the source of a Sync.
type SourceReference struct {
	// Kind of the source; only GitRepository.
	// +optional
	// +kubebuilder:default=GitRepository
	// +kubebuilder:validation:Enum=GitRepository
	Kind string `json:"kind,omitempty"`
	// Name of the source.
	// +required
	Name string `json:"name"`
	// Namespace of the source; defaults to the Sync's.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// ObjectReference names an object in the cluster.
type ObjectReference struct {
	// APIVersion of the object, e.g. apps/v1.
	// +required
	APIVersion string `json:"apiVersion"`
	// Kind of the object.
	// +required
	Kind string `json:"kind"`
	// Name of the object.
	// +required
	Name string `json:"name"`
	// Namespace of the object; empty for cluster-scoped kinds, defaults to
	// the Sync's for namespaced ones.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// Dependency is something a Sync waits for before it applies: another Sync
// (apiVersion and kind empty) or any object, ready by kstatus rules or by a
// CEL expression.
type Dependency struct {
	// APIVersion of the object; empty means a Sync.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// Kind of the object; empty means Sync.
	// +optional
	Kind string `json:"kind,omitempty"`
	// Name of the object.
	// +required
	Name string `json:"name"`
	// Namespace of the object; defaults to the Sync's.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// ReadyWhen is a CEL expression over `self` (the object) that must be
	// true; without it the object must be ready by kstatus rules (a Sync must
	// also have applied its latest source revision). It has the Kubernetes
	// CEL libraries, optional fields (`self.?status.?x.orValue(0)`) and a cost
	// limit; reading a field that is not there is an error (reason
	// ReadyWhenInvalid), so read fields that may be absent optionally.
	// +optional
	ReadyWhen string `json:"readyWhen,omitempty"`
}

// SubstituteReference names a ConfigMap or Secret whose data become
// variables for postBuild substitution.
type SubstituteReference struct {
	// Kind is ConfigMap or Secret.
	// +required
	// +kubebuilder:validation:Enum=ConfigMap;Secret
	Kind string `json:"kind"`
	// Name of the object in the Sync's namespace.
	// +required
	Name string `json:"name"`
	// Optional lets the build go on when the object is missing.
	// +optional
	Optional bool `json:"optional,omitempty"`
}

// PostBuild changes the built manifests before they are applied.
type PostBuild struct {
	// Substitute replaces ${var} and ${var:=default} in the manifests.
	// +optional
	Substitute map[string]string `json:"substitute,omitempty"`
	// SubstituteFrom reads more variables from ConfigMaps and Secrets;
	// later entries and then substitute win.
	// +optional
	SubstituteFrom []SubstituteReference `json:"substituteFrom,omitempty"`
}

// Decryption configures SOPS decryption of the manifests.
type Decryption struct {
	// Provider is sops.
	// +optional
	// +kubebuilder:default=sops
	// +kubebuilder:validation:Enum=sops
	Provider string `json:"provider,omitempty"`
	// SecretRef names a Secret in the Sync's namespace whose `*.agekey`
	// entries hold age identities.
	// +required
	SecretRef LocalReference `json:"secretRef"`
}

// LocalReference names an object in the same namespace.
type LocalReference struct {
	// Name of the object.
	// +required
	Name string `json:"name"`
}

// Rollback configures what happens when a revision fails its health check.
type Rollback struct {
	// OnHealthFailure re-applies the last healthy revision when a new one
	// fails its health check, until the next revision arrives.
	// +optional
	OnHealthFailure bool `json:"onHealthFailure,omitempty"`
	// OnVerificationFailure re-applies the last verified revision when a
	// new one fails its verification (spec.verify), until the next revision
	// arrives.
	// +optional
	OnVerificationFailure bool `json:"onVerificationFailure,omitempty"`
	// OnAlerts rolls the Sync back when an alert whose labels match every
	// one of these matchers fires into a Receiver of the Sync's namespace
	// (see docs/notifications.md); empty never does.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	OnAlerts []AlertMatcher `json:"onAlerts,omitempty"`
}

// AlertMatcher matches one label of an alert, as Alertmanager's matchers do.
type AlertMatcher struct {
	// Name of the label.
	// +required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Operator: = (equal), != (not equal), =~ (matches the RE2 regular
	// expression, anchored), !~ (does not match it).
	// +optional
	// +kubebuilder:default="="
	// +kubebuilder:validation:Enum="=";"!=";"=~";"!~"
	Operator string `json:"operator,omitempty"`
	// Value to compare with.
	// +optional
	Value string `json:"value,omitempty"`
}

// AlertRollback records a rollback triggered by a firing alert: Strata keeps
// Target applied while the source is still at Revision.
type AlertRollback struct {
	// Alert is the name of the alert (its alertname label) that fired.
	// +required
	Alert string `json:"alert"`
	// Revision is the revision that was applied when it fired.
	// +required
	Revision string `json:"revision"`
	// Target is the revision rolled back to.
	// +required
	Target string `json:"target"`
	// RequestedAt is the request's time as the receiver recorded it.
	// +optional
	RequestedAt string `json:"requestedAt,omitempty"`
}

// SyncSpec is what to apply and how.
type SyncSpec struct {
	// SourceRef is the GitRepository to build from.
	// +required
	SourceRef SourceReference `json:"sourceRef"`
	// Path in the repository; defaults to its root.
	// +optional
	Path string `json:"path,omitempty"`
	// Interval between reconciles, which also corrects drift.
	// +optional
	// +kubebuilder:default="5m"
	Interval metav1.Duration `json:"interval,omitempty"`
	// RetryInterval after a failure; defaults to interval.
	// +optional
	RetryInterval *metav1.Duration `json:"retryInterval,omitempty"`
	// Timeout for apply and health checks.
	// +optional
	// +kubebuilder:default="5m"
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// Prune deletes objects that left the build: enabled, disabled, or
	// allowEmpty (also prune when the build is empty).
	// +optional
	// +kubebuilder:default=enabled
	// +kubebuilder:validation:Enum=enabled;disabled;allowEmpty
	Prune string `json:"prune,omitempty"`
	// Wait checks the health of every applied object.
	// +optional
	Wait bool `json:"wait,omitempty"`
	// HealthChecks lists objects whose health is checked (when wait is false).
	// +optional
	HealthChecks []ObjectReference `json:"healthChecks,omitempty"`
	// DependsOn lists what must be ready before this Sync applies.
	// +optional
	DependsOn []Dependency `json:"dependsOn,omitempty"`
	// TargetNamespace sets the namespace of every namespaced object.
	// +optional
	TargetNamespace string `json:"targetNamespace,omitempty"`
	// ServiceAccountName in the Sync's namespace to apply as (impersonated).
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// Suspend stops reconciling; applied objects stay.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
	// PostBuild variable substitution.
	// +optional
	PostBuild *PostBuild `json:"postBuild,omitempty"`
	// Decryption of SOPS-encrypted manifests.
	// +optional
	Decryption *Decryption `json:"decryption,omitempty"`
	// Rollback on health failure.
	// +optional
	Rollback *Rollback `json:"rollback,omitempty"`
	// Verify runs an analysis (AnalysisRun) after each revision is applied
	// and healthy; the revision is verified when it succeeds.
	// +optional
	Verify *Verify `json:"verify,omitempty"`
}

// InventoryEntry is one object applied by a Sync.
type InventoryEntry struct {
	// APIVersion of the object.
	// +required
	APIVersion string `json:"apiVersion"`
	// Kind of the object.
	// +required
	Kind string `json:"kind"`
	// Namespace of the object; empty when cluster-scoped.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Name of the object.
	// +required
	Name string `json:"name"`
}

// HistoryEntry is the result of applying one revision.
type HistoryEntry struct {
	// Revision of the source.
	// +required
	Revision string `json:"revision"`
	// Result is the Ready reason of the attempt.
	// +required
	Result string `json:"result"`
	// Duration of the attempt.
	// +optional
	Duration metav1.Duration `json:"duration,omitempty"`
	// Time the attempt ended.
	// +required
	Time metav1.Time `json:"time"`
}

// SyncStatus is the observed state of a Sync.
type SyncStatus struct {
	// ObservedGeneration is the generation last reconciled successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, Reconciling, Stalled, Healthy.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// LastAppliedRevision is the last revision applied successfully.
	// +optional
	LastAppliedRevision string `json:"lastAppliedRevision,omitempty"`
	// LastAttemptedRevision is the last revision tried.
	// +optional
	LastAttemptedRevision string `json:"lastAttemptedRevision,omitempty"`
	// LastHealthyRevision is the last revision that passed its health
	// check; rollback returns to it.
	// +optional
	LastHealthyRevision string `json:"lastHealthyRevision,omitempty"`
	// RolledBackRevision is the source revision that failed its health check
	// and was rolled back; Strata keeps the last healthy revision applied
	// until the source moves on from it.
	// +optional
	RolledBackRevision string `json:"rolledBackRevision,omitempty"`
	// HealthCheckStartedAt is when the health check of the last attempted
	// revision began; the timeout counts from it.
	// +optional
	HealthCheckStartedAt *metav1.Time `json:"healthCheckStartedAt,omitempty"`
	// Inventory lists every object applied by the last successful apply.
	// +optional
	Inventory []InventoryEntry `json:"inventory,omitempty"`
	// History holds the last revisions tried, newest first.
	// +optional
	History []HistoryEntry `json:"history,omitempty"`
	// LastHandledReconcileAt is the last handled value of the
	// strata.dev/reconcile-requested-at annotation.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`
	// AlertRollback is set while a firing alert holds the Sync at an earlier
	// revision (spec.rollback.onAlerts).
	// +optional
	AlertRollback *AlertRollback `json:"alertRollback,omitempty"`
	// LastVerifiedRevision is the last revision whose verification
	// succeeded; rollbacks of a Sync with spec.verify return to it.
	// +optional
	LastVerifiedRevision string `json:"lastVerifiedRevision,omitempty"`
	// Verification is the analysis of the revision last verified or being
	// verified.
	// +optional
	Verification *VerificationStatus `json:"verification,omitempty"`
}

// Sync builds a path of a GitRepository and applies it to the cluster with
// server-side apply, pruning what left it and checking health.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=strata
// +kubebuilder:printcolumn:name="REVISION",type=string,JSONPath=`.status.lastAppliedRevision`
// +kubebuilder:printcolumn:name="READY",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type Sync struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec SyncSpec `json:"spec"`
	// +optional
	Status SyncStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions for internal/conditions.
func (s *Sync) GetConditions() *[]metav1.Condition { return &s.Status.Conditions }

// +kubebuilder:object:root=true

// SyncList is a list of Syncs.
type SyncList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Sync `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Sync{}, &SyncList{})
}

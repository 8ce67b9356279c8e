// Package v1alpha1 holds the gitops.strata.dev API: GitRepository, a Git
// source that Strata fetches into a local artifact store, and Sync, which
// builds a path of that source and applies it to the cluster.
// +kubebuilder:object:generate=true
// +groupName=gitops.strata.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "gitops.strata.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this API.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the kinds of this API to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// ReconcileRequestAnnotation asks for an immediate reconcile of a
// GitRepository or Sync when its value changes (any value, usually a time).
const ReconcileRequestAnnotation = "strata.dev/reconcile-requested-at"

// PruneAnnotation set to "disabled" on an applied object keeps it in the
// cluster when it leaves the Sync's inventory.
const PruneAnnotation = "strata.dev/prune"

// Condition types specific to this group; Ready, Reconciling and Stalled are
// the shared ones from internal/conditions.
const (
	// ArtifactInStorage is True when the GitRepository's last fetched
	// revision is in the artifact store.
	ArtifactInStorage = "ArtifactInStorage"
	// Healthy is True when every applied object (or every health check) is
	// healthy by kstatus rules.
	Healthy = "Healthy"
)

// RolledBack is True while a Sync is held at an earlier revision because an
// alert matching spec.rollback.onAlerts fired (reason AlertFiring).
const RolledBack = "RolledBack"

// AlertRollbackAnnotation is written on a Sync by the webhook receiver when
// a matching alert fires: JSON {"alert","revision","at"}; the Sync
// controller rolls back when revision is still the applied one.
const AlertRollbackAnnotation = "gitops.strata.dev/alert-rollback"

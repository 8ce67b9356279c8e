package managed

import (
	"time"

	"github.com/strata-dev/strata/internal/kit/ownership"
	managedv1 "github.com/strata-dev/strata/internal/managed/apis/v1alpha1"
)

// Annotations and finalizer the runtime manages.
const (
	// AnnotationExternalName holds the external resource's name; it defaults
	// to metadata.name.
	AnnotationExternalName = "strata.dev/external-name"
	// AnnotationPollInterval overrides the drift poll interval of one
	// resource (a Go duration, e.g. "30s").
	AnnotationPollInterval = "strata.dev/poll-interval"
	// AnnotationCreatePending records, before the external create call, that
	// a create is about to happen (RFC 3339 time).
	AnnotationCreatePending = "strata.dev/external-create-pending"
	// AnnotationCreateSucceeded records that the create call returned.
	AnnotationCreateSucceeded = "strata.dev/external-create-succeeded"
	// AnnotationAdoptExternal set to "true" hands a managed resource an
	// external resource that already exists and that it did not create:
	// without it the resource refuses to change or delete what it finds
	// (mayManage). Whoever writes the managed resource sets it, as an
	// explicit step; a composition sets it only if its template does.
	AnnotationAdoptExternal = "strata.dev/adopt-external"
	// Finalizer keeps a managed resource until its external resource is
	// deleted (or orphaned).
	Finalizer = "managed.strata.dev/finalizer"
)

// Reasons specific to managed resources, next to the shared ones in
// internal/conditions (Available, Creating, Deleting, Unavailable,
// ReconcileSuccess, ReconcileError).
const (
	// ReasonDriftDetected (Synced=True): the external resource differs from
	// the spec and managementPolicies do not allow Update, so it is only
	// reported.
	ReasonDriftDetected = "DriftDetected"
	// ReasonReferenceNotReady (Synced=False): a referenced object is missing
	// or not Ready yet.
	ReasonReferenceNotReady = "ReferenceNotReady"
	// ReasonInUse (ProviderConfig Ready=False): deletion waits for its users.
	ReasonInUse = "InUse"
	// ReasonInvalidSpec (Stalled=True): the spec asks for something the
	// provider refuses before calling the external system (a name over the
	// server's limit, a privilege that does not apply). Only a spec change
	// helps.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonRejected (Stalled=True): the external system refused the
	// request with an error it will always give for this spec (an unknown
	// encoding); retrying cannot help, only a spec change.
	ReasonRejected = "Rejected"
	// ReasonResourceConflict (Synced=False, Stalled=True): the external
	// resource exists and this managed resource neither created it nor was
	// handed it (AnnotationAdoptExternal), so it is left as it is: never
	// updated, never deleted. The same reason as a composite or Sync that
	// finds a Kubernetes object someone else owns.
	ReasonResourceConflict = ownership.ReasonResourceConflict
	// ReasonProviderConfigNotAllowed (Synced=False, Stalled=True): the
	// resource was composed for a claim in a namespace its ProviderConfig's
	// allowedClaimNamespaces leave out; nothing reaches the external system.
	ReasonProviderConfigNotAllowed = "ProviderConfigNotAllowed"
	// ReasonConnectionFailed (ProviderConfig Ready=False): the provider
	// cannot connect to, or log in to, the server the ProviderConfig names
	// with its credentials. The message names the server, never a secret.
	ReasonConnectionFailed = "ConnectionFailed"
)

// Event reasons, one per action or failure.
const (
	EventCreated           = "CreatedExternalResource"
	EventUpdated           = "UpdatedExternalResource"
	EventDeleted           = "DeletedExternalResource"
	EventCannotConnect     = "CannotConnectToProvider"
	EventCannotObserve     = "CannotObserveExternalResource"
	EventCannotCreate      = "CannotCreateExternalResource"
	EventCannotUpdate      = "CannotUpdateExternalResource"
	EventCannotDelete      = "CannotDeleteExternalResource"
	EventCannotResolve     = "CannotResolveReferences"
	EventCannotPublish     = "CannotPublishConnectionDetails"
	EventDrift             = "ExternalResourceDrifted"
	EventLateInitialized   = "LateInitialized"
	EventAdoptedAfterCrash = "AdoptedPendingCreate"
	EventConflict          = "ExternalResourceConflict"
	EventKept              = "KeptExternalResource"
)

// ExternalName returns the external resource's name: the
// strata.dev/external-name annotation, or metadata.name.
func ExternalName(mg Managed) string {
	if n := mg.GetAnnotations()[AnnotationExternalName]; n != "" {
		return n
	}
	return mg.GetName()
}

func setAnnotation(mg Managed, k, v string) {
	a := mg.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[k] = v
	mg.SetAnnotations(a)
}

// ProviderConfigName returns the name of the ProviderConfig mg uses.
func ProviderConfigName(mg Managed) string {
	if r := mg.ManagedSpec().ProviderConfigReference; r != nil && r.Name != "" {
		return r.Name
	}
	return "default"
}

func deletionPolicy(mg Managed) managedv1.DeletionPolicy {
	if p := mg.ManagedSpec().DeletionPolicy; p != "" {
		return p
	}
	return managedv1.DeletionDelete
}

// pollInterval returns the resource's poll interval: its annotation, or def.
func pollInterval(mg Managed, def time.Duration) time.Duration {
	if s := mg.GetAnnotations()[AnnotationPollInterval]; s != "" {
		if d, err := time.ParseDuration(s); err == nil && d > 0 {
			return d
		}
	}
	return def
}

// mayManage reports whether mg may change and delete the external resource
// it found under its external name. It may when:
//   - it created it: a create intent is recorded on it (a create this
//     resource started, perhaps interrupted by a crash), or its success;
//   - it was handed it: AnnotationAdoptExternal is "true";
//   - its managementPolicies leave out Create: such a resource can only ever
//     stand for one that exists already, so it imports it, and does to it
//     what its policies say (["Observe"] nothing).
//
// Anything else found under the name is someone else's (another team's
// database, another managed resource's bucket): whoever could choose the
// name, a claimant's parameter say, must not get it updated, its password
// reset, or deleted with their claim.
func mayManage(mg Managed) bool {
	a := mg.GetAnnotations()
	switch {
	case a[AnnotationCreatePending] != "", a[AnnotationCreateSucceeded] != "", mg.ManagedStatus().CreatedAt != nil:
		return true
	case a[AnnotationAdoptExternal] == "true":
		return true
	}
	return !mg.ManagedSpec().ManagementPolicies.Allows(managedv1.ManagementCreate)
}

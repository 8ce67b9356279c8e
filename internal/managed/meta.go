package managed

import (
	"time"

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

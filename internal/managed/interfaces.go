package managed

import (
	"context"
	"errors"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/conditions"
	managedv1 "github.com/strata-dev/strata/internal/managed/apis/v1alpha1"
)

// Managed is a managed resource: a Kubernetes object that stands for one
// resource in an external system.
type Managed interface {
	client.Object
	conditions.Setter
	// ManagedSpec returns the spec fields every managed resource shares.
	ManagedSpec() *managedv1.ResourceSpec
	// ManagedStatus returns the status fields every managed resource shares.
	ManagedStatus() *managedv1.ResourceStatus
}

// Connector connects to the external system a managed resource lives in,
// usually through the ProviderConfig it names.
type Connector interface {
	// Connect returns a client for the external system. Its errors name the
	// system and the cause, e.g. "cannot connect to postgres at
	// 127.0.0.1:5432: ...".
	Connect(ctx context.Context, mg Managed) (External, error)
}

// ConnectorFunc is a Connector written as a function.
type ConnectorFunc func(ctx context.Context, mg Managed) (External, error)

// Connect calls f.
func (f ConnectorFunc) Connect(ctx context.Context, mg Managed) (External, error) {
	return f(ctx, mg)
}

// External is a connected client for one managed resource. Every method is
// idempotent and returns without waiting for slow external work: the
// reconciler observes again later.
type External interface {
	// Observe reads the external resource named by ExternalName(mg), writes
	// what it found into the resource's status.atProvider, and compares it
	// with spec.forProvider.
	Observe(ctx context.Context, mg Managed) (Observation, error)
	// Create creates the external resource named by ExternalName(mg).
	Create(ctx context.Context, mg Managed) (Creation, error)
	// Update makes the external resource match spec.forProvider.
	Update(ctx context.Context, mg Managed) (Update, error)
	// Delete starts deleting the external resource. Deleting a resource that
	// is already gone is not an error.
	Delete(ctx context.Context, mg Managed) error
}

// Disconnecter is an External that holds resources (connections) to release
// after each reconcile.
type Disconnecter interface {
	Disconnect(ctx context.Context) error
}

// ConnectionDetails are the keys published to the connection Secret.
type ConnectionDetails map[string][]byte

// Observation is what Observe found.
type Observation struct {
	// Exists is true when the external resource exists.
	Exists bool
	// UpToDate is true when the external resource matches the spec.
	UpToDate bool
	// Drift says how it differs, e.g. `owner is "bob", want "app"`. It shows
	// in conditions and events, so it never holds a secret.
	Drift string
	// NotReady, when not empty, says why an existing resource is not yet
	// usable; empty means it is available.
	NotReady string
	// LateInitialized is true when Observe filled unset spec.forProvider
	// fields from the observed state; the reconciler saves the spec.
	LateInitialized bool
	// ConnectionDetails are published to the connection Secret.
	ConnectionDetails ConnectionDetails
}

// Creation is what Create returned.
type Creation struct {
	// ExternalName is set when the external system chose the name.
	ExternalName string
	// ConnectionDetails are published to the connection Secret.
	ConnectionDetails ConnectionDetails
}

// Update is what Update returned.
type Update struct {
	// ConnectionDetails are published to the connection Secret.
	ConnectionDetails ConnectionDetails
}

// ReferenceError says a referenced object does not exist or is not ready.
type ReferenceError struct {
	// Kind and Name of the referenced object.
	Kind, Name string
	// Reason, e.g. "not found" or "not Ready".
	Reason string
}

func (e *ReferenceError) Error() string {
	if e.Name == "" {
		return "no " + e.Kind + " matches the selector: " + e.Reason
	}
	return "referenced " + e.Kind + " \"" + e.Name + "\" is " + e.Reason
}

// AlreadyExistsError is returned by Create when the external system refused
// the create because a resource of that name exists: someone made it between
// this resource's observation and its create. Providers wrap the error with
// AlreadyExists; the runtime then withdraws its create intent, so the
// resource does not count as created by this one, and reports the conflict.
type AlreadyExistsError struct{ Err error }

func (e *AlreadyExistsError) Error() string { return e.Err.Error() }
func (e *AlreadyExistsError) Unwrap() error { return e.Err }

// AlreadyExists marks err, an external system's refusal to create a
// resource whose name is taken, as an AlreadyExistsError.
func AlreadyExists(err error) error { return &AlreadyExistsError{Err: err} }

// IsAlreadyExists reports whether err is, or wraps, an AlreadyExistsError.
func IsAlreadyExists(err error) bool {
	var e *AlreadyExistsError
	return errors.As(err, &e)
}

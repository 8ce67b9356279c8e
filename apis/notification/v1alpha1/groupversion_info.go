// Package v1alpha1 holds the notification.strata.dev API: Provider (where
// messages go: a chat webhook, a generic endpoint, Alertmanager, or a Git
// host's commit status API), Alert (which of Strata's events are sent to a
// Provider, and how), and Receiver (an endpoint that accepts alerts from
// Alertmanager, which may roll Syncs back).
// +kubebuilder:object:generate=true
// +groupName=notification.strata.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "notification.strata.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this API.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the kinds of this API to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// RevisionAnnotation on a Kubernetes Event names the source revision the
// event is about (e.g. main@sha1:<sha>); commit status providers read the
// commit SHA from it.
const RevisionAnnotation = "strata.dev/revision"

// Reasons of the notification kinds (condition Ready unless said otherwise).
const (
	// ReasonSucceeded: the object is valid and usable; for an Alert, every
	// matching event so far was delivered.
	ReasonSucceeded = "Succeeded"
	// ReasonInvalidSpec: a field cannot be used (a regex or template that
	// does not parse, an address that is no URL); Stalled until the spec
	// changes. The message names the field.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonSecretNotFound: the Secret named by secretRef or certSecretRef
	// is missing or lacks the key the provider needs.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonCrossNamespaceRefNotAllowed: a reference names another
	// namespace; Secrets and Providers are read only from the object's own
	// namespace (Stalled).
	ReasonCrossNamespaceRefNotAllowed = "CrossNamespaceRefNotAllowed"
	// ReasonProviderNotReady: the Alert's Provider is missing or not Ready.
	ReasonProviderNotReady = "ProviderNotReady"
	// ReasonDeliveryFailed: a message could not be delivered; it is retried
	// with backoff (the cursor does not move past it) until it is.
	ReasonDeliveryFailed = "DeliveryFailed"
	// ReasonAddressNotAllowed: the Provider's address is, or resolves to,
	// an address in a network the manager does not connect to for tenants
	// (its --egress-denied-networks: by default its own loopback and the
	// cloud's instance metadata service). On a Provider when the address
	// is an IP literal; otherwise on the Alert, when a delivery is refused
	// at connect time, before anything is sent.
	ReasonAddressNotAllowed = "AddressNotAllowed"
	// ReasonSuspended: spec.suspend is true.
	ReasonSuspended = "Suspended"
)

// Event reasons of the notification kinds.
const (
	// EventDeliveryFailed: a message could not be delivered (the message
	// names the event and the cause; the cause never contains a Secret).
	EventDeliveryFailed = "DeliveryFailed"
	// EventDeliveryRecovered: messages are delivered again after a failure.
	EventDeliveryRecovered = "DeliveryRecovered"
)

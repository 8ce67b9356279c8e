// Package v1alpha1 holds the secrets.strata.dev API: SecretStore and
// ClusterSecretStore (how to reach an external secret store), ExternalSecret
// and ClusterExternalSecret (values of a store synced into a Kubernetes
// Secret) and PushSecret (a Kubernetes Secret copied into a store). Field
// names follow External Secrets Operator's external-secrets.io/v1 wherever
// the meaning is the same, so moving over is mostly a change of apiVersion.
// +kubebuilder:object:generate=true
// +groupName=secrets.strata.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "secrets.strata.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this API.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the kinds of this API to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// ReconcileRequestAnnotation asks for an immediate refresh of a store,
// ExternalSecret, ClusterExternalSecret or PushSecret when its value changes
// (any value, usually a time).
const ReconcileRequestAnnotation = "strata.dev/reconcile-requested-at"

// ReloadAnnotation set to "true" on a Deployment, StatefulSet or DaemonSet
// makes Strata stamp a hash of every ExternalSecret-synced Secret its pods
// use (volume, env, envFrom) on its pod template, so a rotated value rolls
// the pods.
const ReloadAnnotation = "secrets.strata.dev/reload"

// SecretHashAnnotation is the pod-template annotation that carries the hash
// of the synced Secrets a reloading workload uses. It never carries values.
const SecretHashAnnotation = "secrets.strata.dev/secret-hash"

// Labels and annotations Strata puts on the Secrets it writes.
const (
	// ManagedByLabel marks a Secret written by an ExternalSecret; its value
	// is ManagedByValue.
	ManagedByLabel = "secrets.strata.dev/managed-by"
	// ManagedByValue is the value of ManagedByLabel.
	ManagedByValue = "strata"
	// OwnerAnnotation names the ExternalSecret (namespace/name) that created
	// a Secret; an ExternalSecret never writes a Secret whose owner is
	// another (creationPolicy Owner).
	OwnerAnnotation = "secrets.strata.dev/owner"
	// DataHashAnnotation is a hash of the synced data, so drift and rotation
	// are seen without reading values in logs.
	DataHashAnnotation = "secrets.strata.dev/data-hash"
)

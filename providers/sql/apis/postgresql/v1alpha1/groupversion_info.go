// Package v1alpha1 holds the postgresql.sql.strata.dev API: ProviderConfig,
// Database, Role and Grant.
// +kubebuilder:object:generate=true
// +groupName=postgresql.sql.strata.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is postgresql.sql.strata.dev/v1alpha1.
	GroupVersion = schema.GroupVersion{Group: "postgresql.sql.strata.dev", Version: "v1alpha1"}
	// SchemeBuilder registers the kinds of this group.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}
	// AddToScheme adds the kinds of this group to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

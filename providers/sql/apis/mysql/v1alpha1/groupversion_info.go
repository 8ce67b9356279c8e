// Package v1alpha1 holds the mysql.sql.strata.dev API: ProviderConfig,
// Database, User and Grant.
// +kubebuilder:object:generate=true
// +groupName=mysql.sql.strata.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is mysql.sql.strata.dev/v1alpha1.
	GroupVersion = schema.GroupVersion{Group: "mysql.sql.strata.dev", Version: "v1alpha1"}
	// SchemeBuilder registers the kinds of this group.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}
	// AddToScheme adds the kinds of this group to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// Package v1alpha1 holds the nop.strata.dev API: NopResource, a managed
// resource that talks to nothing.
// +kubebuilder:object:generate=true
// +groupName=nop.strata.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is nop.strata.dev/v1alpha1.
	GroupVersion = schema.GroupVersion{Group: "nop.strata.dev", Version: "v1alpha1"}
	// SchemeBuilder registers the kinds of this group.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}
	// AddToScheme adds the kinds of this group to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

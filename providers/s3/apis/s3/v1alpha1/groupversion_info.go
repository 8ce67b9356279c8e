// Package v1alpha1 holds the s3.aws.strata.dev API: ProviderConfig and
// Bucket.
// +kubebuilder:object:generate=true
// +groupName=s3.aws.strata.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is s3.aws.strata.dev/v1alpha1.
	GroupVersion = schema.GroupVersion{Group: "s3.aws.strata.dev", Version: "v1alpha1"}
	// SchemeBuilder registers the kinds of this group.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}
	// AddToScheme adds the kinds of this group to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

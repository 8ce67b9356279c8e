// Package v1alpha1 holds the delivery.strata.dev API: AnalysisTemplate and
// ClusterAnalysisTemplate, which say how to measure a release (Prometheus
// queries, web requests, Jobs, conditions over live objects) and when the
// measurements pass, and AnalysisRun, one run of those measurements with
// every result kept in its status. Sync verification, progressive delivery
// and promotion all create AnalysisRuns.
// +kubebuilder:object:generate=true
// +groupName=delivery.strata.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "delivery.strata.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this API.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the kinds of this API to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

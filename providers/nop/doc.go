// Package nop is the nop provider (nop.strata.dev): NopResource, a managed
// resource with no external system behind it. It exercises the shared
// managed-resource runtime in tests and benchmarks. It knows nothing about
// compositions.
package nop

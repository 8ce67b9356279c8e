// Package v1alpha1 holds the spec and status fields every managed resource
// shares (providerConfigRef, deletionPolicy, managementPolicies,
// writeConnectionSecretToRef, conditions). Providers embed ResourceSpec and
// ResourceStatus in their kinds; the package holds no kind of its own, so it
// generates no CRD. Its deepcopy functions are written by hand because
// `make generate` scans only ./apis and ./providers.
package v1alpha1

// Package layering holds the test that keeps Strata's packages in the layers
// docs/architecture.md describes: it lists every package's imports with
// `go list` and fails when one crosses a layer (apis importing internal, the
// kit importing a subsystem, a provider importing compositions, one
// subsystem importing another). It has no code of its own.
package layering

package controller_test

import (
	"testing"
)

// TestCompositionOfAnUnservedKindIsInvalid: a Composition composing a kind
// the API server does not serve is Valid=False when published, naming the
// resource and the kind, and becomes valid once the kind's CRD is installed.
func TestCompositionOfAnUnservedKindIsInvalid(t *testing.T) {
	apply(t, `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: CompositeResourceDefinition
metadata: {name: xghosts.test.strata.dev}
spec:
  group: test.strata.dev
  names: {kind: XGhost, plural: xghosts}
  versions:
  - {name: v1alpha1, served: true, referenceable: true}
`)
	ghost := `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: ghost}
spec:
  compositeTypeRef: {apiVersion: test.strata.dev/v1alpha1, kind: XGhost}
  resources:
  - name: cfg
    template: {apiVersion: v1, kind: ConfigMap}
  - name: db
    template: {apiVersion: ghost.test.strata.dev/v1, kind: Database}
`
	apply(t, ghost)
	waitValid(t, "unknown group", "ghost", "False", `resource "db"`, "kind Database of apiVersion ghost.test.strata.dev/v1 is not served by the API server")
	apply(t, `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: ghost-kind}
spec:
  compositeTypeRef: {apiVersion: test.strata.dev/v1alpha1, kind: XGhost}
  resources:
  - name: cfg
    template: {apiVersion: v1, kind: ConfigMapp}
`)
	waitValid(t, "unknown kind of a served group", "ghost-kind", "False", `resource "cfg"`, "kind ConfigMapp of apiVersion v1 is not served")

	// The CRD arrives: the Composition is published.
	applyAs(t, "someone", `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: databases.ghost.test.strata.dev}
spec:
  group: ghost.test.strata.dev
  names: {kind: Database, plural: databases, listKind: DatabaseList, singular: database}
  scope: Namespaced
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
`)
	waitValid(t, "valid once served", "ghost", "True")
}

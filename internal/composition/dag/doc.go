// Package dag orders the resources of a Composition by the references
// between them: it sorts them topologically, finds cycles and gives the
// reverse order for deletion. It knows nothing about CEL or Kubernetes.
package dag

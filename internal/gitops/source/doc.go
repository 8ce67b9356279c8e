// Package source fetches Git repositories with go-git (shallowly, over
// file://, smart HTTP and SSH) and keeps each fetched revision's files once
// in a local content-addressed artifact store, with garbage collection of
// revisions no repository remembers. FileRoots decides which folders of the
// local disk a file URL may read. It knows nothing about Kubernetes
// objects or controllers: credentials come in as plain values.
package source

// Package image builds Strata's container image from a statically linked
// strata binary with go-containerregistry, without a container daemon and
// without a base image: one layer holding the binary, /etc/passwd and
// /etc/group for the non-root user, and an empty /tmp. It writes the image as
// an OCI image layout and as a tarball `docker load`/`crane push` accept. It
// knows nothing about Kubernetes or about what the binary does.
package image

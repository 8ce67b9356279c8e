// Package build turns a folder of a source artifact into Kubernetes objects:
// kustomize when the folder has a kustomization, otherwise every YAML file
// under it; then ${var} substitution. Errors name the file. kustomize reads
// an in-memory copy of the source and never fetches anything itself: remote
// bases are refused, or fetched here when the caller allows them. It knows
// nothing about clients or the cluster, so the CLI's diff builds exactly as
// the controller does.
package build

// Package fake is the store provider that serves the static data written in
// a store's spec.provider.fake, for tests and demos (the quick start needs
// no server). It knows nothing about controllers or Kubernetes objects.
package fake

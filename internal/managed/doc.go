// Package managed is the shared managed-resource runtime: one reconciler that
// keeps any managed resource in sync with its external resource through a
// provider's small interface (connect, then observe, create, update, delete).
// It owns finalizers, the external-name annotation, create intent, late
// initialization, drift polling, management and deletion policies, connection
// Secrets, conditions, events and metrics, so every provider behaves the same.
// It knows nothing about any particular external system or about compositions.
package managed

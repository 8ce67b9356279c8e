// Package event is the documented event schema that Alert templates and
// payloads see, built from a Kubernetes Event, plus the pure filters of an
// Alert (event sources, severity, inclusion and exclusion lists) and its
// templates. It has no client and knows nothing about providers.
package event

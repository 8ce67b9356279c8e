// Package providers holds one folder per provider: its API types and the
// controllers that keep managed resources in sync with an external system.
package providers

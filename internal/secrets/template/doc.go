// Package template renders an ExternalSecret's target.template: Go
// text/template over the fetched values, with a small set of functions
// (no environment or file access). It is pure: no client, no logging, and
// its errors never quote a value.
package template

// Package webhook is the store provider that reads values from an HTTP
// JSON endpoint: the url, headers and body are Go templates over the
// requested remoteRef and the store's credentials Secrets, and
// result.jsonPath picks the value. Errors name the URL template, never the
// rendered URL or a value. It knows nothing about controllers.
package webhook

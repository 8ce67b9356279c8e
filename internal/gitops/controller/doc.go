// Package controller holds the GitRepository and Sync reconcilers: the first
// fetches sources into the artifact store, the second builds, applies,
// prunes and health-checks them. It wires the pure packages (source, build,
// apply, health) to the API server and knows nothing of how they work inside.
package controller

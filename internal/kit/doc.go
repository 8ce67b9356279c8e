// Package kit is the shared runtime every Strata controller and the CLI stand
// on. Each concern is one subpackage: ownership (who may write an object and
// under which field manager), eventmsg (event messages the API server accepts),
// and the others listed in docs/architecture.md. The kit knows nothing about
// compositions, Syncs or providers; they call it.
package kit

// Package kit is the shared runtime every Strata controller and the CLI stand
// on. Each concern is one subpackage: ownership (who may write an object and
// under which field manager), eventmsg (event messages the API server accepts),
// patch (status writes from the object as read, optionally optimistic-locked),
// health (whether an object is ready: kstatus plus Strata's rules), celenv (the
// one CEL environment for every user expression), ssa (server-side apply with
// per-writer field managers), connsecret (connection Secrets), tenant (acting as a tenant's service
// account), egress (the networks a controller acting for a tenant never
// connects to), and the others listed in
// docs/architecture.md. The kit knows nothing about compositions, Syncs or
// providers; they call it.
package kit

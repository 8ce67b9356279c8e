// Package inputs reads, once for the delivery controllers and the CLI, what
// applying a Sync takes from the cluster and from its spec: the Git
// credentials of its GitRepository, its build options (substitution
// variables, decryption keys), the identity it applies as, the owner and
// field manager it writes with, its inventory, and the fields a Rollout
// wrote that an apply from Git must keep (KeepRolloutFields). `strata diff`
// calls the same functions as the Sync controller, so the two cannot drift.
//
// It knows nothing about reconciling, conditions or events.
package inputs

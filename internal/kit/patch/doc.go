// Package patch writes what a reconcile decided back to the API server as one
// merge patch from the object as the reconcile last read or wrote it. A write
// may carry that object's resourceVersion (optimistic locking), so a reconcile
// that started from a stale cache cannot overwrite a newer write: the API
// server answers Conflict and the caller retries from a fresh read. Status that
// records what exists in the cluster (a Sync's inventory) is written this way.
// A write that would change nothing is not sent: not when the status equals
// the one read, nor, with a Memory, when it equals the one this controller
// last wrote (a reconcile that started from a cache that lags its own write).
// A Memory also tells a controller when the object it read is older than its
// own last status write (Behind), so it can wait for its cache instead of
// acting on the state before that write.
// The package knows nothing about which fields a controller keeps in status.
package patch

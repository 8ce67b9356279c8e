// Package connsecret is the one publisher of connection Secrets: the Secret a
// composite resource or a managed resource writes its connection details to
// (spec.writeConnectionSecretToRef). It reads the Secret live (never from a
// cache of every Secret in the cluster), writes it by server-side apply with
// the owner's own field manager, never writes or reads the values of a Secret
// another owner controls (a *ownership.ConflictError naming that owner), and
// deletes only a Secret its owner controls.
//
// It knows nothing about compositions or providers: callers pass an
// ownership.Owner and the details.
package connsecret

// Package celenv is the one factory of CEL environments: every expression a
// user writes (composition templates, readyWhen of compositions and Syncs)
// compiles here, with the Kubernetes CEL libraries, cel-go's extensions,
// optional field access (`a.?b.orValue(c)`) and a cost limit that stops a
// runaway expression. It knows nothing about templates, compositions, Syncs
// or clients: callers declare their variables and evaluate programs.
package celenv

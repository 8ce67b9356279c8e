// Package cli holds the `strata` command tree: `up`/`down` for the local
// cluster, `manager` for running the controllers against any cluster, and the
// offline and inspection commands that later capabilities add. Commands are
// thin: they parse flags and call the engine packages.
package cli

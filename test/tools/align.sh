#!/usr/bin/env bash
# Raises every module that Strata's go.mod and the given tools modules both
# use to the highest version any of them selects, in each go.mod, until they
# agree. Run it after bumping a dependency of Strata or of one of those tools:
#
#   test/tools/align.sh                  Strata, the cluster, controller-gen, sops
#   test/tools/align.sh test/tools/sops  Strata and that module only
#
# Why: Go's build cache keys a compiled package by its source and by its
# dependencies' compiled forms, so a package of one version, with the same
# versions below it and the same flags, is compiled once for every module
# that builds it. The cluster (k8s.io/* v0.37, grpc, protobuf, cel-go, ...),
# controller-gen and the sops CLI share most of their packages with Strata's
# own build; aligned, a cold `make test` compiles those packages once instead
# of twice (test/tools/build.sh, "shared" groups). Nothing depends on it for
# correctness: a module left unaligned only compiles its packages again.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ $# = 0 ]; then set -- "$here" "$here/controller-gen" "$here/sops"; fi
mods=("$root")
for m in "$@"; do mods+=("$(cd "$m" && pwd)"); done

# versions prints "path version" for every module a module's build list
# holds, the replacement's version where a replace directive pins one.
versions() {
	(cd "$1" && go list -m -f '{{if not .Main}}{{.Path}} {{with .Replace}}{{.Version}}{{else}}{{.Version}}{{end}}{{end}}' all) | sort
}

for round in 1 2 3 4 5 6; do
	tmp=$(mktemp -d)
	for i in "${!mods[@]}"; do versions "${mods[$i]}" >"$tmp/$i"; done
	# The highest version of each path across all modules.
	for i in "${!mods[@]}"; do cat "$tmp/$i"; done | sort -k1,1 -k2,2V | awk '{h[$1]=$2} END {for (p in h) print p, h[p]}' | sort >"$tmp/high"
	changed=0
	for i in "${!mods[@]}"; do
		edits=()
		while read -r p v h; do
			[ -n "$v" ] && [ "$v" != "$h" ] && edits+=("-require=$p@$h")
		done < <(join "$tmp/$i" "$tmp/high")
		# A raise that `go mod tidy` takes back (a module in the build list
		# whose packages this module does not build) is no change.
		if [ ${#edits[@]} -gt 0 ]; then
			before=$(cat "${mods[$i]}/go.mod")
			(cd "${mods[$i]}" && go mod edit "${edits[@]}" && go mod tidy)
			[ "$before" = "$(cat "${mods[$i]}/go.mod")" ] || changed=1
		fi
	done
	rm -rf "$tmp"
	if [ $changed = 0 ]; then echo "align: aligned (${mods[*]})"; exit 0; fi
done
echo "align: still moving after 6 rounds" >&2
exit 1

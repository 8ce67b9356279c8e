#!/usr/bin/env bash
# Builds the local cluster's binaries (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, kwok and its stages) and
# the servers and tools the tests need, each from a pinned module in this
# folder. Every group is cached on its own in a per-user cache, keyed by a hash
# of its pins, so adding or bumping one tool rebuilds only that tool, and a
# fresh clone or a CI run on the same machine reuses the rest; bin/ only holds
# links into the cache.
#
#   build.sh BIN            the groups `make test` needs
#   build.sh BIN GROUP...   only those groups (for example `kro` for make bench)
#
# Adding a tool: put a module in a folder of its own here (go.mod, go.sum and a
# tools.go that imports the command), then add a line to the table below.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-$root/bin}
shift || true
cacheroot=${STRATA_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/strata/tools}

# group | module folder | outputs (space-separated) | packages to build (space-separated) | extra go build flags
#
# "debug" among the flags builds without optimizations and inlining
# (-gcflags=all=-N -l): the compiler then needs about a third less CPU
# (controller-gen, measured from an empty build cache: 130 s against 200 s),
# which on a cold two-core machine is most of a run's time. It is for the
# servers the tests start, whose speed no test measures, and that share few
# packages with Strata. STRATA_TOOLS_OPTIMIZE=1 (which `make bench` sets)
# builds every group optimized, in a cache entry of its own: the benchmarks
# time Vault and Prometheus requests too.
#
# The cluster, controller-gen and sops are built the way `go build` and `go
# test` build Strata itself (optimized, no -trimpath, no cgo), from modules
# whose shared dependencies are at Strata's versions (align.sh keeps them
# so): most of their packages (k8s.io/*, grpc, protobuf, cel-go, the cloud
# SDKs sops links) are then the same compile actions as Strata's, compiled
# once per cold run and found in Go's build cache by the other builds. `make
# test` builds controller-gen and sops after Strata's own packages for that
# reason (Makefile).
#
# Vault is built with its "minimal" tag: the KV, PKI, SSH and Transit secrets
# engines and the AppRole, JWT/OIDC, cert and userpass auth methods, without
# the cloud SDKs, database plugins and storage backends that were most of its
# compile time. The Kubernetes auth method, which the tests use, is Vault's
# own external plugin from the same pins (vaulttest registers it).
# Groups marked "bench" are built only when asked for by name. A group with no
# packages builds nothing: copy_group copies its files out of the module.
table() {
	cat <<'EOF'
cluster|.|etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok kwok-stages.yaml|./cmd/etcd k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl sigs.k8s.io/kwok/cmd/kwok|k8s
controller-gen|controller-gen|controller-gen|sigs.k8s.io/controller-tools/cmd/controller-gen|
versitygw|versitygw|versitygw|github.com/versity/versitygw/cmd/versitygw|debug
alertmanager|alertmanager|alertmanager|github.com/prometheus/alertmanager/cmd/alertmanager|debug
prometheus|prometheus|prometheus|github.com/prometheus/prometheus/cmd/prometheus|debug -tags=remove_all_sd
sops|sops|sops|github.com/getsops/sops/v3/cmd/sops|
bench:kro|kro|controller|github.com/kubernetes-sigs/kro/cmd/controller|
vault|vault|vault vault-plugin-auth-kubernetes|github.com/hashicorp/vault github.com/hashicorp/vault-plugin-auth-kubernetes/cmd/vault-plugin-auth-kubernetes|debug -tags=minimal
gateway-api|gateway-api|gateway-api-crds.yaml||
EOF
}

default_groups() { table | cut -d'|' -f1 | grep -v '^bench:' ; }

build_group() {
	local name=$1 dir=$2 outs=$3 pkgs=$4 extra=$5
	local mdir="$here/$dir"
	if [ "${STRATA_TOOLS_OPTIMIZE:-0}" = 1 ]; then
		extra=$(echo "$extra" | sed -E 's/(^| )debug( |$)/ /; s/^ +//; s/ +$//')
	fi
	# The key covers this script's table line and the module's pins.
	local key
	key=$( (echo "$name|$dir|$outs|$pkgs|$extra"; cd "$mdir" && cat go.mod go.sum;
		if [ "$name" = cluster ]; then cat "$here/cmd/etcd/main.go"; sed -n '/^build_group/,/^}/p' "$here/build.sh"; fi) |
		sha256sum | cut -c1-16)
	local cache="$cacheroot/$name-$key"
	local complete=1 o
	for o in $outs; do [ -e "$cache/$o" ] || complete=0; done
	if [ $complete = 0 ]; then
		echo "tools: building $name into $cache"
		local start tmp
		start=$(date +%s)
		tmp="$cache.tmp.$$"
		rm -rf "$tmp" && mkdir -p "$tmp"
		trap 'rm -rf "$tmp"' EXIT
		local flags=("-ldflags=-s -w")
		if [ "$extra" = k8s ]; then
			# Stamp the Kubernetes binaries with their release, as upstream's
			# build does, so the API server reports v1.37.2, not v0.0.0-master.
			local k8s minor v
			k8s=$(cd "$mdir" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
			minor=$(echo "$k8s" | cut -d. -f2)
			v=k8s.io/component-base/version
			flags=("-ldflags=-s -w -X $v.gitVersion=$k8s -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean")
		elif [ -n "$extra" ]; then
			local f
			for f in $extra; do
				case $f in
				debug) flags+=("-gcflags=all=-N -l") ;;
				*) flags+=("$f") ;;
				esac
			done
		fi
		# The build's CPU time (its processes' user and system seconds, from
		# the subshell's `times`) goes into the "built" line: on a cold
		# machine the groups share the cores, so only CPU time says what a
		# group costs.
		# shellcheck disable=SC2086
		(cd "$mdir" && go build "${flags[@]}" -o "$tmp/" $pkgs && times >"$tmp/.times")
		local cpu
		cpu=$(tail -1 "$tmp/.times" | awk '{split($1, u, "m"); split($2, s, "m"); printf "%d", u[1]*60 + u[2] + s[1]*60 + s[2]}')
		rm -f "$tmp/.times"
		if [ "$name" = cluster ]; then
			# kwok needs its stages as configuration: the node and pod "fast"
			# stages from the pinned kwok module (nodes become Ready, pods
			# Running at once).
			local kwok f
			kwok=$(cd "$mdir" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
			for f in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
				pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
				echo "---"
				cat "$kwok/kustomize/stage/$f"
			done >"$tmp/kwok-stages.yaml"
		fi
		rm -rf "$cache" && mv "$tmp" "$cache"
		trap - EXIT
		echo "tools: built $name in $(($(date +%s) - start))s (${cpu}s of CPU)"
	fi
	mkdir -p "$bin"
	for o in $outs; do ln -sfn "$cache/$o" "$bin/$o"; done
}

# copy_group fills a group's cache with files from its pinned module instead
# of building: for gateway-api, the release's standard CRDs (HTTPRoute,
# Gateway, GatewayClass, ...) in one file that `strata up` installs.
copy_group() {
	local name=$1 dir=$2 outs=$3
	local mdir="$here/$dir"
	local key
	key=$( (echo "$name|$dir|$outs"; cd "$mdir" && cat go.mod go.sum; sed -n '/^copy_group/,/^}/p' "$here/build.sh") |
		sha256sum | cut -c1-16)
	local cache="$cacheroot/$name-$key"
	local complete=1 o
	for o in $outs; do [ -e "$cache/$o" ] || complete=0; done
	if [ $complete = 0 ]; then
		echo "tools: copying $name into $cache"
		local tmp="$cache.tmp.$$" mod f
		rm -rf "$tmp" && mkdir -p "$tmp"
		case $name in
		gateway-api)
			(cd "$mdir" && go mod download sigs.k8s.io/gateway-api)
			mod=$(cd "$mdir" && go list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api)
			for f in "$mod"/config/crd/standard/*.yaml; do
				grep -q '^kind: CustomResourceDefinition' "$f" || continue # the ValidatingAdmissionPolicy
				echo "---"
				cat "$f"
			done >"$tmp/gateway-api-crds.yaml"
			;;
		*) echo "tools: no files to copy for $name" >&2; rm -rf "$tmp"; return 1 ;;
		esac
		rm -rf "$cache" && mv "$tmp" "$cache"
		echo "tools: copied $name"
	fi
	mkdir -p "$bin"
	for o in $outs; do ln -sfn "$cache/$o" "$bin/$o"; done
}

# locked runs a group's build holding a per-user lock for that group, so a
# second `make tools` (another checkout, a CI run) waits for the first and then
# finds its result in the cache instead of compiling the same group beside it.
locked() {
	mkdir -p "$cacheroot"
	local lock
	exec {lock}>"$cacheroot/${2#bench:}.lock"
	if ! flock -n "$lock"; then
		echo "tools: waiting for another build of ${2#bench:}"
		flock "$lock"
	fi
	"$@"
}

groups=("$@")
if [ ${#groups[@]} = 0 ]; then mapfile -t groups < <(default_groups); fi
# The groups build side by side: one `go build` keeps about one core busy
# (its long compile and link steps run alone), so on two cores a cold run of
# all groups takes about half the time it takes one after another.
pids=()
for g in "${groups[@]}"; do
	line=$(table | grep -E "^(bench:)?$g\|" || true)
	if [ -z "$line" ]; then echo "tools: no group $g" >&2; exit 2; fi
	IFS='|' read -r name dir outs pkgs extra <<<"$line"
	if [ -z "$pkgs" ]; then
		locked copy_group "${name#bench:}" "$dir" "$outs" &
	else
		locked build_group "${name#bench:}" "$dir" "$outs" "$pkgs" "$extra" &
	fi
	pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
if [ $failed = 1 ]; then echo "tools: a build failed (see above)" >&2; exit 1; fi
echo "tools: $bin ready (${groups[*]})"

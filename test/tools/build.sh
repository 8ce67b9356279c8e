#!/usr/bin/env bash
# Builds the local cluster's binaries (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, kwok and its stages) and
# the development tools (controller-gen, versitygw) from the pinned modules in
# this folder. Builds are kept in a per-user cache keyed by a hash of those
# pins, so a fresh clone or a CI run on the same machine reuses them; bin/
# only holds links into the cache.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-$root/bin}

key=$(cd "$here" && cat build.sh go.mod go.sum cmd/etcd/main.go \
	controller-gen/go.mod controller-gen/go.sum versitygw/go.mod versitygw/go.sum |
	sha256sum | cut -c1-16)
cache=${STRATA_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/strata/tools}/$key
outputs=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok kwok-stages.yaml controller-gen versitygw)

complete() {
	for o in "${outputs[@]}"; do [ -e "$cache/$o" ] || return 1; done
}

if ! complete; then
	echo "tools: building the local cluster binaries into $cache (a cold build takes several minutes on two cores)"
	start=$(date +%s)
	tmp="$cache.tmp.$$"
	rm -rf "$tmp" && mkdir -p "$tmp"
	trap 'rm -rf "$tmp"' EXIT
	flags=(-trimpath -ldflags=-s\ -w)
	# Stamp the Kubernetes binaries with their release, as upstream's build
	# does, so the API server reports v1.36.3 rather than v0.0.0-master.
	k8s=$(cd "$here" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
	minor=$(echo "$k8s" | cut -d. -f2)
	v=k8s.io/component-base/version
	kflags=(-trimpath "-ldflags=-s -w -X $v.gitVersion=$k8s -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean")
	(cd "$here" && go build "${kflags[@]}" -o "$tmp/" ./cmd/etcd \
		k8s.io/kubernetes/cmd/kube-apiserver \
		k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler \
		k8s.io/kubernetes/cmd/kubectl \
		sigs.k8s.io/kwok/cmd/kwok)
	(cd "$here/controller-gen" && go build "${flags[@]}" -o "$tmp/" sigs.k8s.io/controller-tools/cmd/controller-gen)
	(cd "$here/versitygw" && go build "${flags[@]}" -o "$tmp/" github.com/versity/versitygw/cmd/versitygw)
	# kwok needs its stages as configuration: the node and pod "fast" stages
	# from the pinned kwok module (nodes become Ready, pods Running at once).
	kwok=$(cd "$here" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
	for f in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
		pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
		echo "---"
		cat "$kwok/kustomize/stage/$f"
	done >"$tmp/kwok-stages.yaml"
	rm -rf "$cache" && mv "$tmp" "$cache"
	trap - EXIT
	echo "tools: built in $(($(date +%s) - start))s"
fi

mkdir -p "$bin"
for o in "${outputs[@]}"; do
	ln -sfn "$cache/$o" "$bin/$o"
done
echo "tools: $bin ready ($key)"

#!/bin/bash
# run-in-memcg.sh LIMIT_BYTES -- COMMAND...
#
# Runs COMMAND (a benchmark) and, once the `strata up` it starts has its
# cluster running (the state directory's `ready` file), moves that one
# process, which runs the manager, into a memory cgroup limited to
# LIMIT_BYTES, as if the manager ran in a container with that memory limit;
# etcd, the API server and the other cluster processes stay outside. Prints
# the cgroup's usage and the process's RSS every 5 s and whether the kernel's
# OOM killer fired. Needs root and a cgroup-v1 memory hierarchy at
# /sys/fs/cgroup/memory (what these benchmark VMs have). Memory the process
# had before the move stays charged outside (about 110 MiB).
#
# docs/benchmarks.md, "The manager's memory", used:
#   STRATA_BENCH_N=10000 STRATA_BENCH_KRO=0 STRATA_BENCH_UP_ARGS=--memory-limit=921Mi \
#     test/bench/memcg/run-in-memcg.sh 1073741824 -- \
#     go test -count=1 -run '^$' -bench 'Composition/Strata' ./test/bench/composition
set -u
limit=${1:?usage: run-in-memcg.sh LIMIT_BYTES -- COMMAND...}
shift
[ "${1:-}" = "--" ] && shift
root=/sys/fs/cgroup/memory
if [ ! -w "$root" ]; then
	echo "run-in-memcg.sh: needs root and a cgroup-v1 memory hierarchy at $root" >&2
	exit 2
fi
cg=$root/strata-bench-$$
mkdir "$cg" && echo "$limit" > "$cg/memory.limit_in_bytes" || exit 2

watch() {
	local pid dir
	while true; do
		pid=$(pgrep -f 'bin/strata up' | head -1)
		if [ -n "$pid" ]; then
			dir=$(tr '\0' '\n' < /proc/$pid/cmdline 2>/dev/null | grep -A1 -- '--state-dir' | tail -1)
			[ -n "$dir" ] && [ -e "$dir/ready" ] && break
		fi
		sleep 0.2
	done
	echo "memcg: $(date +%T) moving strata up ($pid) into $cg, limit $((limit >> 20)) MiB"
	echo "$pid" > "$cg/cgroup.procs"
	while kill -0 "$pid" 2>/dev/null; do
		echo "memcg: $(date +%T) usage $(($(cat $cg/memory.usage_in_bytes) >> 20)) MiB, max $(($(cat $cg/memory.max_usage_in_bytes) >> 20)) MiB, RSS $(awk '/VmRSS/ {print int($2/1024)}' /proc/$pid/status 2>/dev/null) MiB"
		sleep 5
	done
	echo "memcg: $(date +%T) strata up ($pid) ended; $(grep oom_kill "$cg/memory.oom_control" | tr '\n' ' ')"
}
watch &
watcher=$!
"$@"
rc=$?
sleep 6 # the watcher's last sample and verdict
kill "$watcher" 2>/dev/null
wait "$watcher" 2>/dev/null
rmdir "$cg" 2>/dev/null
exit $rc

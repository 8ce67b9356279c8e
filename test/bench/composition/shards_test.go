package composition

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/strata-dev/strata/internal/kubeclient"
	"github.com/strata-dev/strata/test/bench/benchutil"
)

// shardKeys are the values of kubeclient.ShardLabel the claims get, in turn.
var shardKeys = []string{"a", "b"}

// BenchmarkShards runs the composition workload (N claims × 3 ConfigMaps,
// created, updated and deleted in bursts) twice in one cluster: once with
// one `strata manager` process reconciling every claim, then with one
// process per shard (--watch-label-selector on sharding.strata.dev/key),
// the claims labelled with the shards' keys in turn. The two runs and the
// lower bound share the API server, so the ratio between them is what a
// second shard buys on this machine.
func BenchmarkShards(b *testing.B) {
	load := benchutil.LoadAverage()
	// The cluster's own manager runs a subsystem that never sees a claim;
	// the composition engine runs in the shard processes.
	up := benchutil.StartUp(b, "notification")
	cl := &cluster{Up: up, c: up.Unthrottled(b)}
	n := benchutil.Sizes("1000")[0]

	all := fmt.Sprintf("%s in (%s)", kubeclient.ShardLabel, strings.Join(shardKeys, ","))
	var each []string
	for _, k := range shardKeys {
		each = append(each, fmt.Sprintf("%s=%s", kubeclient.ShardLabel, k))
	}
	// One manager, the shards, one manager again: the cluster drifts over
	// a run (etcd grows and compacts, caches warm), so the shards are
	// compared with the mean of a run before and a run after them.
	one := "Strata, 1 manager"
	two := fmt.Sprintf("Strata, %d shards", len(shardKeys))
	plan := []struct {
		who       string
		selectors []string
	}{{one, []string{all}}, {two, each}, {one, []string{all}}}

	var rows []benchutil.Row
	var rss []string
	for i, run := range plan {
		peers := startShards(b, cl, run.selectors...)
		if i == 0 {
			for _, y := range []string{xrdYAML, compositionYAML} {
				apply(b, cl.c, y)
			}
			waitServed(b, cl.c, claimGVK, "bench")
		}
		lb := cl.MeasureLowerBound(b, fmt.Sprintf("lower-bound-shards-%d-%d", i, n), 4*n)
		who := fmt.Sprintf("%s, run %d", run.who, i+1)
		b.Run(fmt.Sprintf("%d-%s/N=%d", i+1, strings.ReplaceAll(strings.TrimPrefix(run.who, "Strata, "), " ", "-"), n), func(b *testing.B) {
			rows = append(rows, runSharded(b, cl, n, lb, who, fmt.Sprintf("shards-%d", i+1))...)
			rss = append(rss, peakRSS(fmt.Sprintf("run %d, %s", i+1, strings.TrimPrefix(run.who, "Strata, ")), peers))
		})
		stopShards(peers)
	}
	for _, r := range rows {
		r.Print()
	}
	if err := writeShards(load, n, rows, rss); err != nil {
		b.Error(err)
	}
}

// startShards starts a `strata manager` running the composition engine for
// each selector, and waits until each holds its shard's lease.
func startShards(b *testing.B, cl *cluster, selectors ...string) []*benchutil.Peer {
	var out []*benchutil.Peer
	for _, sel := range selectors {
		out = append(out, cl.StartPeer(b, "strata", "manager", "--subsystems", "composition",
			"--watch-label-selector", sel, "--leader-election-namespace", "kube-system",
			"--metrics-bind-address", "0", "--health-probe-bind-address", "0"))
	}
	benchutil.WaitUntil(b, 2*time.Minute, "every shard's manager leading", func() (bool, string) {
		for i, p := range out {
			if done, log := p.Exited(); done {
				b.Fatalf("the manager of shard %q exited; its last output:\n%s", selectors[i], log)
			}
			if !p.Logged("Successfully acquired lease") {
				return false, fmt.Sprintf("shard %q has no lease yet", selectors[i])
			}
		}
		return true, ""
	})
	return out
}

func stopShards(ps []*benchutil.Peer) {
	for _, p := range ps {
		p.Stop()
	}
}

func peakRSS(what string, ps []*benchutil.Peer) string {
	var parts []string
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("%.0f", p.PeakRSSMiB()))
	}
	return fmt.Sprintf("%s: %s MiB", what, strings.Join(parts, " + "))
}

func runSharded(b *testing.B, cl *cluster, n int, lb benchutil.LowerBound, who, ns string) []benchutil.Row {
	cs := claims{c: cl.c, gvk: claimGVK, ns: ns,
		composed: func(cm *unstructured.Unstructured) bool {
			_, ok := cm.GetLabels()["strata.dev/composite"]
			return ok
		},
		labels: func(i int) map[string]string {
			return map[string]string{kubeclient.ShardLabel: shardKeys[i%len(shardKeys)]}
		},
	}
	return cs.run(b, cl.Up, who, n, lb)
}

// writeShards replaces the shards section of docs/benchmarks.md.
func writeShards(load string, n int, rows []benchutil.Row, rss []string) error {
	two := fmt.Sprintf("%d shards", len(shardKeys))
	if len(rows) == 0 {
		return nil
	}
	var s strings.Builder
	s.WriteString(benchutil.Heading("Composition engine, sharded", "BenchmarkShards", "test/bench/composition", load))
	fmt.Fprintf(&s, "The composition workload above (N=%d claims of three ConfigMaps; create, update, delete in bursts of %d workers), run three\n", n, benchutil.Workers)
	fmt.Fprintf(&s, "times in one local cluster: by one `strata manager --subsystems composition --watch-label-selector '%s in (%s)'`\n", kubeclient.ShardLabel, strings.Join(shardKeys, ","))
	fmt.Fprintf(&s, "process, then by %d such processes, one per shard (`--watch-label-selector %s=<key>`, each with its own\n", len(shardKeys), kubeclient.ShardLabel)
	fmt.Fprintf(&s, "leader election), then by one process again; each run after its own lower bound. Claim i carries `%s: %s[i mod %d]`.\n", kubeclient.ShardLabel, strings.Join(shardKeys, "/"), len(shardKeys))
	fmt.Fprintf(&s, "Controller CPU is the manager processes' together.\n\n")
	s.WriteString(benchutil.Table(rows))
	s.WriteString("\n")
	for _, l := range rss {
		fmt.Fprintf(&s, "- Manager peak RSS, %s.\n", l)
	}
	if len(rows) == 9 {
		for i := 0; i < 3; i++ {
			a, sh, c := rows[i], rows[i+3], rows[i+6]
			mean := (a.Phase.Took.Seconds() + c.Phase.Took.Seconds()) / 2
			fmt.Fprintf(&s, "- %s: one manager %.1f s and %.1f s (mean %.1f s), %s %.1f s: %.2f× the one manager's mean.\n",
				a.Step, a.Phase.Took.Seconds(), c.Phase.Took.Seconds(), mean, two, sh.Phase.Took.Seconds(), sh.Phase.Took.Seconds()/mean)
		}
	}
	return benchutil.WriteSection("shards-bench", s.String())
}

package composition

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/strata-dev/strata/internal/kubeclient"
	"github.com/strata-dev/strata/internal/manager"
	"github.com/strata-dev/strata/test/bench/benchutil"
)

// shardKeys are the values of kubeclient.ShardLabel the claims get, in turn.
var shardKeys = []string{"a", "b"}

// BenchmarkShards runs the composition workload (N claims × 3 ConfigMaps,
// created, updated and deleted in bursts) five times in one cluster, by
// three configurations of the composition engine: one `strata manager`
// process reconciling every claim with its default workers; one process per
// shard (--watch-label-selector on sharding.strata.dev/key), the claims
// labelled with the shards' keys in turn; and one process with as many
// workers as the shards have together. The runs and their lower bounds
// share the API server, so the ratios between them are what a second shard,
// or the same concurrency in one process, buys on this machine.
func BenchmarkShards(b *testing.B) {
	load := benchutil.LoadAverage()
	// The cluster's own manager runs a subsystem that never sees a claim;
	// the composition engine runs in the processes started here.
	up := benchutil.StartUp(b, "notification")
	cl := &cluster{Up: up, c: up.Unthrottled(b)}
	n := benchutil.Sizes("1000")[0]

	all := fmt.Sprintf("%s in (%s)", kubeclient.ShardLabel, strings.Join(shardKeys, ","))
	var each []string
	for _, k := range shardKeys {
		each = append(each, fmt.Sprintf("%s=%s", kubeclient.ShardLabel, k))
	}
	// The cluster drifts over a run (etcd grows and compacts, caches warm,
	// a VM's speed changes), so the configurations run in a symmetric
	// order: the means of one manager (runs 1, 5), of the shards (2, 4)
	// and the one run with more workers (3) all centre on the third run.
	plan := []shardRun{one, shards(each), wide, shards(each), one}
	for i := range plan {
		if plan[i].selectors == nil {
			plan[i].selectors = []string{all}
		}
	}

	var rows []benchutil.Row
	var rss []string
	for i, run := range plan {
		peers := startShards(b, cl, run)
		if i == 0 {
			for _, y := range []string{xrdYAML, compositionYAML} {
				apply(b, cl.c, y)
			}
			waitServed(b, cl.c, claimGVK, "bench")
		}
		lb := cl.MeasureLowerBound(b, fmt.Sprintf("lower-bound-shards-%d-%d", i, n), 4*n)
		who := fmt.Sprintf("Strata, %s, run %d", run.name, i+1)
		b.Run(fmt.Sprintf("%d-%s/N=%d", i+1, strings.ReplaceAll(run.name, " ", "-"), n), func(b *testing.B) {
			rows = append(rows, runSharded(b, cl, n, lb, who, fmt.Sprintf("shards-%d", i+1))...)
			rss = append(rss, peakRSS(fmt.Sprintf("run %d, %s", i+1, run.name), peers))
		})
		stopShards(peers)
	}
	for _, r := range rows {
		r.Print()
	}
	if err := writeShards(load, n, plan, rows, rss); err != nil {
		b.Error(err)
	}
}

// defaultWorkers is `strata manager`'s worker count per composition
// controller.
var defaultWorkers = manager.DefaultOptions().WorkersFor("composition")

// shardRun is one configuration of the composition engine: a process per
// selector, each started with args.
type shardRun struct {
	name      string
	selectors []string // nil: one process for every shard's claims
	args      []string
}

var (
	one  = shardRun{name: "1 manager"}
	wide = shardRun{
		name: fmt.Sprintf("1 manager, %d workers", defaultWorkers*len(shardKeys)),
		args: []string{"--workers", fmt.Sprintf("composition=%d", defaultWorkers*len(shardKeys))},
	}
)

func shards(selectors []string) shardRun {
	return shardRun{name: fmt.Sprintf("%d shards", len(selectors)), selectors: selectors}
}

// startShards starts a `strata manager` running the composition engine for
// each selector, and waits until each holds its shard's lease.
func startShards(b *testing.B, cl *cluster, run shardRun) []*benchutil.Peer {
	var out []*benchutil.Peer
	selectors := run.selectors
	for _, sel := range selectors {
		args := []string{"manager", "--subsystems", "composition",
			"--watch-label-selector", sel, "--leader-election-namespace", "kube-system",
			"--metrics-bind-address", "0", "--health-probe-bind-address", "0"}
		out = append(out, cl.StartPeer(b, "strata", append(args, run.args...)...))
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
func writeShards(load string, n int, plan []shardRun, rows []benchutil.Row, rss []string) error {
	if len(rows) == 0 {
		return nil
	}
	var s strings.Builder
	s.WriteString(benchutil.Heading("Composition engine, sharded", "BenchmarkShards", "test/bench/composition", load))
	fmt.Fprintf(&s, "The composition workload above (N=%d claims of three ConfigMaps; create, update, delete in bursts of %d workers), run %d\n", n, benchutil.Workers, len(plan))
	fmt.Fprintf(&s, "times in one local cluster, each run after its own lower bound, by three configurations in the order ")
	var order []string
	for _, r := range plan {
		order = append(order, r.name)
	}
	fmt.Fprintf(&s, "%s:\n", strings.Join(order, "; "))
	fmt.Fprintf(&s, "one `strata manager --subsystems composition --watch-label-selector '%s in (%s)'` process (%d workers per controller,\n", kubeclient.ShardLabel, strings.Join(shardKeys, ","), defaultWorkers)
	fmt.Fprintf(&s, "the default); %d such processes, one per shard (`--watch-label-selector %s=<key>`, each with its own leader\n", len(shardKeys), kubeclient.ShardLabel)
	fmt.Fprintf(&s, "election); one process with `%s`, the shards' workers together. Claim i carries `%s: %s[i mod %d]`.\n", strings.Join(wide.args, " "), kubeclient.ShardLabel, strings.Join(shardKeys, "/"), len(shardKeys))
	fmt.Fprintf(&s, "Controller CPU is the manager processes' together.\n\n")
	s.WriteString(benchutil.Table(rows))
	s.WriteString("\n")
	for _, l := range rss {
		fmt.Fprintf(&s, "- Manager peak RSS, %s.\n", l)
	}
	for _, l := range compareShards(plan, rows) {
		fmt.Fprintf(&s, "- %s\n", l)
	}
	return benchutil.WriteSection("shards-bench", s.String())
}

// compareShards says, per step, each configuration's mean time over its
// runs and its ratio to one manager's mean. rows holds the runs' rows in
// plan order, the same steps in each.
func compareShards(plan []shardRun, rows []benchutil.Row) []string {
	if len(plan) == 0 || len(rows)%len(plan) != 0 {
		return nil
	}
	steps := len(rows) / len(plan)
	var out []string
	for st := 0; st < steps; st++ {
		times := map[string][]float64{}
		var names []string
		for i, r := range plan {
			if _, ok := times[r.name]; !ok {
				names = append(names, r.name)
			}
			times[r.name] = append(times[r.name], rows[i*steps+st].Phase.Took.Seconds())
		}
		base := mean(times[plan[0].name])
		var parts []string
		for _, name := range names {
			ts := times[name]
			var each []string
			for _, t := range ts {
				each = append(each, fmt.Sprintf("%.1f", t))
			}
			part := fmt.Sprintf("%s %s s", name, strings.Join(each, " and "))
			if len(ts) > 1 {
				part += fmt.Sprintf(" (mean %.1f s)", mean(ts))
			}
			if name != plan[0].name && base > 0 {
				part += fmt.Sprintf(": %.2f× of %s", mean(ts)/base, plan[0].name)
			}
			parts = append(parts, part)
		}
		out = append(out, fmt.Sprintf("%s: %s.", rows[st].Step, strings.Join(parts, "; ")))
	}
	return out
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var t float64
	for _, x := range xs {
		t += x
	}
	return t / float64(len(xs))
}

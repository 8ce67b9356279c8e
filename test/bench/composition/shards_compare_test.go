package composition

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-dev/strata/test/bench/benchutil"
)

func TestCompareShards(t *testing.T) {
	row := func(step string, secs float64) benchutil.Row {
		return benchutil.Row{Step: step, Phase: benchutil.Phase{Took: time.Duration(secs * float64(time.Second))}}
	}
	two := shards([]string{"k=a", "k=b"})
	cases := map[string]struct {
		plan []shardRun
		rows []benchutil.Row
		want []string
	}{
		"five runs of three configurations, two steps": {
			plan: []shardRun{one, two, wide, two, one},
			rows: []benchutil.Row{
				row("create", 40), row("delete", 30),
				row("create", 30), row("delete", 20),
				row("create", 35), row("delete", 33),
				row("create", 34), row("delete", 22),
				row("create", 60), row("delete", 50),
			},
			want: []string{
				"create: 1 manager 40.0 and 60.0 s (mean 50.0 s); 2 shards 30.0 and 34.0 s (mean 32.0 s): 0.64× of 1 manager; 1 manager, 64 workers 35.0 s: 0.70× of 1 manager.",
				"delete: 1 manager 30.0 and 50.0 s (mean 40.0 s); 2 shards 20.0 and 22.0 s (mean 21.0 s): 0.53× of 1 manager; 1 manager, 64 workers 33.0 s: 0.82× of 1 manager.",
			},
		},
		"a run that failed leaves no comparison": {
			plan: []shardRun{one, two},
			rows: []benchutil.Row{row("create", 40), row("delete", 30), row("create", 30)},
		},
		"nothing ran": {plan: []shardRun{one, two}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, compareShards(tc.plan, tc.rows)); diff != "" {
				t.Errorf("compareShards (-want +got):\n%s", diff)
			}
		})
	}
}

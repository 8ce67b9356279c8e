package benchutil

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

const exposition = `# HELP apiserver_request_total [STABLE] Counter of apiserver requests.
# TYPE apiserver_request_total counter
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="configmaps",scope="resource",subresource="",verb="POST",version="v1"} 3000
apiserver_request_total{code="409",component="apiserver",dry_run="",group="",resource="configmaps",scope="resource",subresource="",verb="POST",version="v1"} 2
apiserver_request_total{code="200",component="apiserver",dry_run="",group="bench.strata.dev",resource="benches",scope="resource",subresource="status",verb="APPLY",version="v1alpha1"} 1000
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="configmaps",scope="namespace",subresource="",verb="LIST",version="v1"} 77
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="configmaps",scope="resource",subresource="",verb="GET",version="v1"} 5
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="configmaps",scope="cluster",subresource="",verb="WATCH",version="v1"} 3
apiserver_request_total{code="200",component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="GET",version="v1"} 9
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="nodes",scope="resource",subresource="status",verb="PATCH",version="v1"} 40
apiserver_request_total{code="200",component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="PUT",version="v1"} 12
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="events",scope="resource",subresource="",verb="POST",version="v1"} 1.5e+03
# HELP process_cpu_seconds_total [STABLE] Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 123.45
go_goroutines 512
`

func TestParseMetrics(t *testing.T) {
	cases := map[string]struct {
		text    string
		names   []string
		want    []Sample
		wantErr bool
	}{
		"only the wanted metric": {
			text:  exposition,
			names: []string{"process_cpu_seconds_total"},
			want:  []Sample{{Name: "process_cpu_seconds_total", Labels: map[string]string{}, Value: 123.45}},
		},
		"labels, escapes and a timestamp": {
			text: `m{a="x",b="say \"hi\"\n",c="back\\slash",} 7 1700000000000` + "\n",
			want: []Sample{{Name: "m", Labels: map[string]string{"a": "x", "b": "say \"hi\"\n", "c": `back\slash`}, Value: 7}},
		},
		"comments and blank lines": {
			text: "# HELP x\n\n   \nx 1\n",
			want: []Sample{{Name: "x", Labels: map[string]string{}, Value: 1}},
		},
		"special values": {
			text:  "a +Inf\nb NaN\n",
			names: []string{"a"},
			want:  []Sample{{Name: "a", Labels: map[string]string{}, Value: posInf}},
		},
		"no value":            {text: "x\n", wantErr: true},
		"unterminated label":  {text: `x{a="b} 1` + "\n", wantErr: true},
		"malformed label":     {text: `x{a=b} 1` + "\n", wantErr: true},
		"value not a number":  {text: "x{} one\n", wantErr: true},
		"label without value": {text: "x{} \n", wantErr: true},
		"bad line of an unwanted metric is skipped": {
			text:  "y{a=b} 1\nx 2\n",
			names: []string{"x"},
			want:  []Sample{{Name: "x", Labels: map[string]string{}, Value: 2}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ParseMetrics(tc.text, tc.names...)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error = %v, want error %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("samples (-want +got):\n%s", diff)
			}
		})
	}
}

var posInf = func() float64 { var z float64; return 1 / z }()

func TestWritesOf(t *testing.T) {
	samples, err := ParseMetrics(exposition)
	if err != nil {
		t.Fatal(err)
	}
	got := WritesOf(samples)
	want := Writes{
		{Verb: "POST", Resource: "configmaps"}:                                                 3002,
		{Verb: "APPLY", Group: "bench.strata.dev", Resource: "benches", Subresource: "status"}: 1000,
		{Verb: "POST", Resource: "events"}:                                                     1500,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	// GETs and LISTs; not WATCHes, not the lease heartbeat's GETs.
	if got, want := ReadsOf(samples), 82.0; got != want {
		t.Errorf("reads = %v, want %v", got, want)
	}
	if got, want := Value(samples, "process_cpu_seconds_total"), 123.45; got != want {
		t.Errorf("cpu = %v, want %v", got, want)
	}
}

func TestWritesSub(t *testing.T) {
	cm := WriteKey{Verb: "POST", Resource: "configmaps"}
	ev := WriteKey{Verb: "POST", Resource: "events"}
	st := WriteKey{Verb: "PATCH", Group: "g", Resource: "xs", Subresource: "status"}
	cases := map[string]struct {
		before, after Writes
		want          Writes
		total         float64
		text          string
	}{
		"new keys and grown keys; unchanged keys left out": {
			before: Writes{cm: 10, ev: 5},
			after:  Writes{cm: 40, ev: 5, st: 7},
			want:   Writes{cm: 30, st: 7},
			total:  37,
			text:   "POST configmaps=30, PATCH xs.g/status=7",
		},
		"nothing happened": {
			before: Writes{cm: 1},
			after:  Writes{cm: 1},
			want:   Writes{},
			total:  0,
			text:   "",
		},
		"ties sort by name": {
			before: Writes{},
			after:  Writes{ev: 2, cm: 2},
			want:   Writes{ev: 2, cm: 2},
			total:  4,
			text:   "POST configmaps=2, POST events=2",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := tc.after.Sub(tc.before)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("diff (-want +got):\n%s", diff)
			}
			if got.Total() != tc.total {
				t.Errorf("total = %v, want %v", got.Total(), tc.total)
			}
			if got.String() != tc.text {
				t.Errorf("text = %q, want %q", got.String(), tc.text)
			}
		})
	}
}

func TestSnapshotSub(t *testing.T) {
	cm := WriteKey{Verb: "POST", Resource: "configmaps"}
	before := Snapshot{Writes: Writes{cm: 100}, Reads: 7, APIServerCPU: 10, EtcdCPU: 4, StrataCPU: 2, PeerCPU: 1}
	after := Snapshot{Writes: Writes{cm: 4100}, Reads: 2007, APIServerCPU: 13.5, EtcdCPU: 5, StrataCPU: 2.5, PeerCPU: 1}
	after.At = before.At.Add(3e9)
	got := after.Sub(before)
	want := Phase{Took: 3e9, Writes: Writes{cm: 4000}, Reads: 2000, APIServerCPU: 3.5, EtcdCPU: 1, StrataCPU: 0.5}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("phase (-want +got):\n%s", diff)
	}
	if got.Per(1000) != 4 {
		t.Errorf("per claim = %v, want 4", got.Per(1000))
	}
}

func TestProcCPUSeconds(t *testing.T) {
	cases := map[string]struct {
		stat    string
		want    float64
		wantErr bool
	}{
		"plain": {
			stat: "4242 (kube-apiserver) S 1 4242 4242 0 -1 4194560 123 0 0 0 1500 250 0 0 20 0 12 0 100 0 0",
			want: 17.5,
		},
		"a name with spaces and parentheses": {
			stat: "7 (my (odd) name) R 1 7 7 0 -1 0 0 0 0 0 200 100 0 0 20 0 1 0 5 0 0",
			want: 3,
		},
		"truncated":     {stat: "7 (x) R 1 2", wantErr: true},
		"no name":       {stat: "7 x R", wantErr: true},
		"not a number":  {stat: "7 (x) R 1 7 7 0 -1 0 0 0 0 0 a 100 0", wantErr: true},
		"stime garbled": {stat: "7 (x) R 1 7 7 0 -1 0 0 0 0 0 1 b 0", wantErr: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ProcCPUSeconds(tc.stat, 100)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error = %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("cpu = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	cases := map[string]struct {
		values []float64
		p      float64
		want   float64
	}{
		"none":          {values: nil, p: 99, want: 0},
		"one":           {values: []float64{3}, p: 50, want: 3},
		"p50 of 100":    {values: hundred, p: 50, want: 50},
		"p99 of 100":    {values: hundred, p: 99, want: 99},
		"p100 of 100":   {values: hundred, p: 100, want: 100},
		"p99 of four":   {values: []float64{1, 2, 3, 4}, p: 99, want: 4},
		"p50 of four":   {values: []float64{1, 2, 3, 4}, p: 50, want: 2},
		"p1 of hundred": {values: hundred, p: 1, want: 1},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := Percentile(tc.values, tc.p); got != tc.want {
				t.Errorf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func TestReplaceSection(t *testing.T) {
	const start, end = "<!-- x:start -->", "<!-- x:end -->"
	section := start + "\nnew\n" + end + "\n"
	cases := map[string]struct {
		text, want string
	}{
		"empty file":      {text: "", want: "# Benchmarks\n\n" + section},
		"append":          {text: "# B\n\nother\n", want: "# B\n\nother\n\n" + section},
		"replace between": {text: "a\n" + start + "\nold\n" + end + "\nb\n", want: "a\n" + section + "b\n"},
		"end at EOF":      {text: "a\n" + start + "\nold\n" + end, want: "a\n" + section},
		"other sections stay": {
			text: "<!-- y:start -->\ny\n<!-- y:end -->\n" + start + "\nold\n" + end + "\n",
			want: "<!-- y:start -->\ny\n<!-- y:end -->\n" + section,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, ReplaceSection(tc.text, start, end, section)); diff != "" {
				t.Errorf("text (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExtraFlags(t *testing.T) {
	cases := map[string]struct {
		args []string
		want string
	}{
		"none":  {args: []string{"up", "--state-dir", "/tmp/x", "--allow-file-urls", "/tmp", "--subsystems", "composition"}, want: ""},
		"added": {args: []string{"up", "--state-dir", "/tmp/x", "--subsystems", "a,b", "--kube-api-qps=5000", "--workers", "32"}, want: " --kube-api-qps=5000 --workers 32"},
		"empty": {args: nil, want: ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := ExtraFlags(tc.args); got != tc.want {
				t.Errorf("ExtraFlags = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTarget(t *testing.T) {
	cases := map[string]struct {
		got, limit float64
		want       string
	}{
		"met":     {got: 1.2, limit: 1.5, want: "- ratio: 1.20× (target ≤ 1.50×), met.\n"},
		"limit":   {got: 1.5, limit: 1.5, want: "- ratio: 1.50× (target ≤ 1.50×), met.\n"},
		"not met": {got: 9.06, limit: 1.5, want: "- ratio: 9.06× (target ≤ 1.50×), not met.\n"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := Target("ratio", tc.got, tc.limit, "%.2f×"); got != tc.want {
				t.Errorf("Target = %q, want %q", got, tc.want)
			}
		})
	}
}

// Package writecount counts the write requests an API server has served, by
// verb and resource, from its apiserver_request_total metric, so a test can
// say how many writes a controller made per object and fail when that grows.
// Only tests import it; it knows nothing about the controllers it measures.
package writecount

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/strata-dev/strata/test/bench/benchutil"
)

// Writes are an API server's write requests so far by "VERB resource[/sub]",
// and "VERB resource[/sub] (code)" for those that failed (a conflict retry
// shows as such).
type Writes map[string]float64

// Total is the number of writes.
func (w Writes) Total() float64 {
	var s float64
	for _, v := range w {
		s += v
	}
	return s
}

// Scrape reads the write requests the API server at cfg has served, leaving
// out lease heartbeats.
func Scrape(t testing.TB, cfg *rest.Config) Writes {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatalf("cannot read the API server's metrics: %v", err)
	}
	samples, err := benchutil.ParseMetrics(string(raw), "apiserver_request_total")
	if err != nil {
		t.Fatal(err)
	}
	out := Writes{}
	for _, s := range samples {
		l := s.Labels
		if !benchutil.WriteVerbs[l["verb"]] || l["resource"] == "leases" {
			continue
		}
		key := l["verb"] + " " + l["resource"]
		if l["subresource"] != "" {
			key += "/" + l["subresource"]
		}
		if !strings.HasPrefix(l["code"], "2") {
			key += " (" + l["code"] + ")"
		}
		out[key] += s.Value
	}
	return out
}

// Settle waits until the count stops changing (no write for a second), so
// the writes a reconcile makes after the state a test waited for are counted
// too, and returns it; it fails the test when writes go on for a minute.
func Settle(t testing.TB, cfg *rest.Config) Writes {
	t.Helper()
	last := Scrape(t, cfg)
	for range 60 {
		time.Sleep(time.Second)
		cur := Scrape(t, cfg)
		if cur.Total() == last.Total() {
			return cur
		}
		last = cur
	}
	t.Fatalf("writes went on for a minute: %v", last)
	return nil
}

// Check fails when the writes between before and after, less the user's own
// one request per object, exceed max per object (n objects, each a unit such
// as "claim"); it logs them by verb, resource and failure code either way.
func Check(t testing.TB, what, unit string, before, after Writes, n, max int) {
	t.Helper()
	var keys []string
	for k := range after {
		if after[k] != before[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, (after[k]-before[k])/float64(n)))
	}
	per := (after.Total()-before.Total())/float64(n) - 1
	t.Logf("%s: %.2f writes per %s beyond the user's (%s)", what, per, unit, strings.Join(parts, ", "))
	if per > float64(max) {
		t.Errorf("%s: %.2f writes per %s, want at most %d", what, per, unit, max)
	}
}

package promtest

import (
	"context"
	"testing"
)

// TestScrapesTarget checks that the Prometheus started here scrapes the
// test's own /metrics: a gauge the test sets can be queried.
func TestScrapesTarget(t *testing.T) {
	tg := NewTarget(t)
	tg.Gauge("promtest_value", "app").WithLabelValues("demo").Set(42)
	p := Start(t, tg.Addr)
	p.WaitFor(t, `promtest_value{app="demo"} == 42`)
	n, err := p.Query(context.Background(), `promtest_value{app="other"}`)
	if err != nil || n != 0 {
		t.Fatalf("query for another app: %d samples, err %v; want 0", n, err)
	}
}

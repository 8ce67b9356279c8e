package benchutil

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Parallel runs fn(i) for every i in [0, n) on workers goroutines and fails
// tb with the first error once all have run.
func Parallel(tb testing.TB, n, workers int, fn func(i int) error) {
	tb.Helper()
	ch := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		ch <- i
	}
	close(ch)
	wg.Wait()
	if first != nil {
		tb.Fatal(first)
	}
}

// WaitUntil polls fn every 100ms until it returns true, and fails tb after
// d with what and the state fn last reported.
func WaitUntil(tb testing.TB, d time.Duration, what string, fn func() (bool, string)) {
	tb.Helper()
	WaitUntilEvery(tb, d, 100*time.Millisecond, what, fn)
}

// WaitUntilEvery is WaitUntil polling every interval.
func WaitUntilEvery(tb testing.TB, d, interval time.Duration, what string, fn func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := fn()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %s (%s)", what, d, state)
		}
		time.Sleep(interval)
	}
}

// SizesEnv names the comma-separated list of sizes a benchmark runs at.
const SizesEnv = "STRATA_BENCH_N"

// Sizes is the positive integers in $STRATA_BENCH_N, or in def (such as
// "100,1000") when it is unset; entries that are not positive integers are
// ignored.
func Sizes(def string) []int {
	s := os.Getenv(SizesEnv)
	if s == "" {
		s = def
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

package benchutil

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// ProfileEnv names a directory that receives CPU profiles of the API server,
// one set per measured phase: `strata up` then runs with
// --apiserver-profiling, and while a phase's work runs the benchmark takes
// back-to-back profiles of profileSlice each into
// <dir>/<benchmark>-<phase>-<k>.pprof. `go tool pprof -top <dir>/<name>-*`
// merges one phase's slices. Profiling costs the API server a little CPU, so
// a run with it set is for finding out where the time goes, not for the
// numbers in docs/benchmarks.md.
const ProfileEnv = "STRATA_BENCH_PPROF"

// profileSlice is the length of one profile: short, so the last slice of a
// phase ends soon after its work.
const profileSlice = 5 * time.Second

// profileFlags are the `strata up` flags profiling needs.
func profileFlags() []string {
	if os.Getenv(ProfileEnv) == "" {
		return nil
	}
	return []string{"--apiserver-profiling"}
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9=._-]+`)

// profile takes API server CPU profiles until the returned stop is called
// (which waits for the slice under way). It does nothing unless ProfileEnv
// is set.
func (u *Up) profile(tb testing.TB) (stop func()) {
	u.phases++
	return u.Profile(tb, fmt.Sprint(u.phases))
}

// Profile takes API server CPU profiles, named
// <dir>/<benchmark>-<step>-<k>.pprof, until the returned stop is called
// (which waits for the slice under way). It does nothing unless ProfileEnv
// is set (and `strata up` was started with it).
func (u *Up) Profile(tb testing.TB, step string) (stop func()) {
	dir := os.Getenv(ProfileEnv)
	if dir == "" {
		return func() {}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatalf("cannot create %s (%s): %v", dir, ProfileEnv, err)
	}
	base := filepath.Join(dir, unsafeName.ReplaceAllString(tb.Name()+"-"+step, "_"))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := 0; ctx.Err() == nil; k++ {
			if err := u.profileSlice(fmt.Sprintf("%s-%d.pprof", base, k)); err != nil {
				fmt.Fprintf(os.Stderr, "benchutil: API server profile: %v\n", err)
				return
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

func (u *Up) profileSlice(path string) error {
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", u.host, int(profileSlice/time.Second))
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	resp, err := u.metrics.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

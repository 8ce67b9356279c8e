package manager

import (
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

func TestSetMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })

	const gi = int64(1) << 30
	noEnv := func(string) (string, bool) { return "", false }
	container := func(n uint64, err error) func() (uint64, error) {
		return func() (uint64, error) { return n, err }
	}
	cases := []struct {
		name      string
		flag      string
		env       func(string) (string, bool)
		container func() (uint64, error)
		want      MemoryLimit
		wantErr   string
	}{
		{name: "a container limit of 1Gi gives 90% of it", container: container(uint64(gi), nil),
			want: MemoryLimit{Bytes: 966367641, Source: "container"}}, // 0.9 × 1073741824, rounded down
		{name: "the flag wins over the container", flag: "512Mi", container: container(uint64(gi), nil),
			want: MemoryLimit{Bytes: 512 << 20, Source: "flag"}},
		{name: "the flag wins over GOMEMLIMIT", flag: "2G", env: func(string) (string, bool) { return "100MiB", true },
			container: container(uint64(gi), nil), want: MemoryLimit{Bytes: 2e9, Source: "flag"}},
		{name: "0 turns the limit off", flag: "0", container: container(uint64(gi), nil),
			want: MemoryLimit{Bytes: math.MaxInt64, Source: "flag"}},
		{name: "no cgroup: no limit", container: container(0, memlimit.ErrNoCgroup),
			want: MemoryLimit{Bytes: math.MaxInt64, Source: "none"}},
		{name: "a cgroup without a limit: no limit", container: container(0, fmt.Errorf("v2: %w", memlimit.ErrNoLimit)),
			want: MemoryLimit{Bytes: math.MaxInt64, Source: "none"}},
		{name: "an unreadable cgroup starts without a limit and says why", container: container(0, errors.New("permission denied")),
			want: MemoryLimit{Bytes: math.MaxInt64, Source: "none (cannot read the container's memory limit: permission denied)"}},
		{name: "a bad quantity names the flag", flag: "lots", container: container(uint64(gi), nil),
			wantErr: `--memory-limit "lots"`},
		{name: "a negative quantity is refused", flag: "-1Gi", container: container(uint64(gi), nil),
			wantErr: `--memory-limit "-1Gi"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(math.MaxInt64)
			env := tc.env
			if env == nil {
				env = noEnv
			}
			got, err := setMemoryLimit(tc.flag, env, tc.container)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %s", err, tc.wantErr)
				}
				if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
					t.Errorf("a refused flag set the runtime's limit to %d", l)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if l := debug.SetMemoryLimit(-1); l != tc.want.Bytes {
				t.Errorf("the runtime's limit is %d, want %d", l, tc.want.Bytes)
			}
		})
	}

	// GOMEMLIMIT, applied by the runtime when the process started, is kept
	// and reported as it is.
	debug.SetMemoryLimit(300 << 20)
	got, err := setMemoryLimit("", func(k string) (string, bool) { return "300MiB", k == "GOMEMLIMIT" }, container(uint64(gi), nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := (MemoryLimit{Bytes: 300 << 20, Source: "GOMEMLIMIT"}); got != want {
		t.Errorf("with GOMEMLIMIT set: got %+v, want %+v", got, want)
	}
	if l := debug.SetMemoryLimit(-1); l != 300<<20 {
		t.Errorf("with GOMEMLIMIT set the runtime's limit became %d", l)
	}
}

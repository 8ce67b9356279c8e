package manager

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"k8s.io/apimachinery/pkg/api/resource"
)

// MemoryLimitRatio is the share of the container's memory limit the manager
// gives the Go runtime as its soft limit by default. The rest is headroom for
// memory the runtime does not count (thread stacks outside Go, the binary,
// page cache charged to the container).
const MemoryLimitRatio = 0.9

// MemoryLimit is the Go runtime's soft memory limit SetMemoryLimit set, and
// where it came from: "flag", "GOMEMLIMIT", "container" or "none".
type MemoryLimit struct {
	// Bytes is the limit; math.MaxInt64 means none.
	Bytes  int64
	Source string
}

// LogValues are the limit's structured log fields.
func (m MemoryLimit) LogValues() []any {
	if m.Bytes == math.MaxInt64 {
		return []any{"memoryLimit", "none", "source", m.Source}
	}
	return []any{"memoryLimit", fmt.Sprintf("%dMi", m.Bytes>>20), "source", m.Source}
}

// SetMemoryLimit sets the Go runtime's soft memory limit of this process
// (runtime/debug.SetMemoryLimit) from --memory-limit:
//
//   - "" (the default): the GOMEMLIMIT environment variable when it is set
//     (the runtime has already applied it), else MemoryLimitRatio of the
//     memory limit of the container's cgroup, else none;
//   - a quantity ("900Mi", "2G"): that many bytes;
//   - "0": no limit, the runtime's own default.
//
// Without a soft limit the garbage collector lets the heap grow to twice what
// is live before it collects (GOGC=100), so a manager whose caches hold half
// its container's limit is killed for running out of memory; with one, the
// collector works harder as the heap nears the limit instead (at most half
// the CPU, by the runtime's own cap). Call it once per process, before the
// manager starts.
func SetMemoryLimit(flag string) (MemoryLimit, error) {
	return setMemoryLimit(flag, os.LookupEnv, memlimit.FromCgroup)
}

func setMemoryLimit(flag string, env func(string) (string, bool), container func() (uint64, error)) (MemoryLimit, error) {
	limit, source, err := memoryLimit(flag, env, container)
	if err != nil {
		return MemoryLimit{}, err
	}
	if source == "GOMEMLIMIT" {
		limit = debug.SetMemoryLimit(-1)
	} else {
		debug.SetMemoryLimit(limit)
	}
	return MemoryLimit{Bytes: limit, Source: source}, nil
}

// memoryLimit decides the limit and names its source: "flag", "GOMEMLIMIT",
// "container" or "none".
func memoryLimit(flag string, env func(string) (string, bool), container func() (uint64, error)) (int64, string, error) {
	if flag != "" {
		q, err := resource.ParseQuantity(flag)
		if err != nil {
			return 0, "", fmt.Errorf("--memory-limit %q: want a quantity such as 900Mi, or 0 for none: %w", flag, err)
		}
		n, ok := q.AsInt64()
		if !ok || n < 0 {
			return 0, "", fmt.Errorf("--memory-limit %q: want a whole number of bytes from 0 up, such as 900Mi", flag)
		}
		if n == 0 {
			return math.MaxInt64, "flag", nil
		}
		return n, "flag", nil
	}
	if v, ok := env("GOMEMLIMIT"); ok && v != "" {
		return 0, "GOMEMLIMIT", nil
	}
	c, err := container()
	switch {
	case err == nil && c > 0 && c < math.MaxInt64:
		return int64(float64(c) * MemoryLimitRatio), "container", nil
	case err == nil, errors.Is(err, memlimit.ErrNoLimit), errors.Is(err, memlimit.ErrNoCgroup), errors.Is(err, memlimit.ErrCgroupsNotSupported):
		return math.MaxInt64, "none", nil
	default:
		// An unreadable cgroup is not a reason to refuse to start: run as
		// Go does by default and say why.
		return math.MaxInt64, "none (cannot read the container's memory limit: " + err.Error() + ")", nil
	}
}

package benchutil

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/strata-dev/strata/internal/testenv"
)

// Row is one measured step of one contender (Strata or a peer) next to the
// lower bound for the same writes, measured in the same run.
type Row struct {
	Step  string // "create → all Ready"
	Who   string // "Strata", "kro"
	N     int    // objects (claims, instances, resources, Syncs)
	Unit  string // what N counts: "claim"
	Phase Phase
	// Bound is the lower bound's phase for the same number of writes, and
	// BoundWhat says what it wrote ("4000 ConfigMap creates").
	Bound     Phase
	BoundWhat string
	// Own is how many of the phase's writes the benchmark itself made (the
	// user's creates, patches or deletes of the N objects).
	Own int
}

// Beyond is the writes per object beyond the benchmark's own: what the
// engine (and the cluster's controllers) wrote.
func (r Row) Beyond() float64 { return (r.Phase.Writes.Total() - float64(r.Own)) / float64(r.N) }

// Ratio is the contender's time over the lower bound's.
func (r Row) Ratio() float64 {
	if r.Bound.Took <= 0 {
		return 0
	}
	return r.Phase.Took.Seconds() / r.Bound.Took.Seconds()
}

// Line is the row as one line for the benchmark's output.
func (r Row) Line() string {
	return fmt.Sprintf("%s N=%d %s: %.1fs | lower bound %.1fs (%s) | %.2fx | %.1f API writes/%s, %.1f beyond the user's own (%s) | %.1f API reads (GET, LIST)/%s | API server CPU %.1fs (lower bound %.1fs) | etcd CPU %.1fs | %s CPU %.1fs",
		r.Who, r.N, r.Step, r.Phase.Took.Seconds(), r.Bound.Took.Seconds(), r.BoundWhat, r.Ratio(), r.Phase.Per(r.N), r.Unit,
		r.Beyond(), r.Phase.Writes, r.Phase.Reads/float64(r.N), r.Unit, r.Phase.APIServerCPU, r.Bound.APIServerCPU, r.Phase.EtcdCPU, strings.ToLower(r.Who), r.controllerCPU())
}

func (r Row) controllerCPU() float64 {
	if r.Who == "Strata" {
		return r.Phase.StrataCPU
	}
	return r.Phase.PeerCPU
}

// Print writes the row's line to the benchmark's output.
func (r Row) Print() { fmt.Fprintln(os.Stdout, r.Line()) }

// Table is rows as a Markdown table.
func Table(rows []Row) string {
	var s strings.Builder
	s.WriteString("| step | who | N | time (s) | lower bound (s) | ratio | API writes per object | beyond the user's own | API server CPU (s) | lower bound API server CPU (s) | etcd CPU (s) | controller CPU (s) |\n")
	s.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(&s, "| %s | %s | %d | %.1f | %.1f (%s) | %.2f× | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n",
			r.Step, r.Who, r.N, r.Phase.Took.Seconds(), r.Bound.Took.Seconds(), r.BoundWhat, r.Ratio(), r.Phase.Per(r.N), r.Beyond(),
			r.Phase.APIServerCPU, r.Bound.APIServerCPU, r.Phase.EtcdCPU, r.controllerCPU())
	}
	return s.String()
}

// WritesTable lists each row's writes by verb and resource, so a reader can
// see which requests an engine could save.
func WritesTable(rows []Row) string {
	var s strings.Builder
	s.WriteString("| step | who | N | counted over (s) | writes by verb and resource |\n| --- | --- | --- | --- | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(&s, "| %s | %s | %d | %.1f | %s |\n", r.Step, r.Who, r.N, r.Phase.Span.Seconds(), r.Phase.Writes)
	}
	return s.String()
}

func numCPU() int { return runtime.NumCPU() }

// Heading is the start of a benchmark's section of docs/benchmarks.md: its
// title, which benchmark wrote it and when, and the machine it ran on.
func Heading(title, bench, pkg, load string) string {
	return fmt.Sprintf("## %s\n\n`make bench` (`%s` in `%s`), written by the benchmark on %s.\nMachine: %s. One run.\n\n",
		title, bench, pkg, time.Now().UTC().Format("2006-01-02 15:04 UTC"), Machine(load))
}

// WriteSection replaces the part of docs/benchmarks.md between
// `<!-- name:start -->` and `<!-- name:end -->` with body, or appends it.
func WriteSection(name, body string) error {
	start, end := "<!-- "+name+":start -->", "<!-- "+name+":end -->"
	section := start + "\n" + strings.TrimRight(body, "\n") + "\n" + end + "\n"
	path := filepath.Join(testenv.RepoRoot(), "docs", "benchmarks.md")
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.WriteFile(path, []byte(ReplaceSection(string(old), start, end, section)), 0o644)
}

// ReplaceSection replaces text from start through end (and the newline after
// it) with section, or appends section when the markers are missing.
func ReplaceSection(text, start, end, section string) string {
	if text == "" {
		text = "# Benchmarks\n\n"
	}
	if i := strings.Index(text, start); i >= 0 {
		if j := strings.Index(text[i:], end); j >= 0 {
			j += i + len(end)
			if j < len(text) && text[j] == '\n' {
				j++
			}
			return text[:i] + section + text[j:]
		}
	}
	return strings.TrimRight(text, "\n") + "\n\n" + section
}

// Target is one line of a "targets" list: what issue 15 asks for, what this
// run measured and whether it is met. It reports; it asserts nothing.
func Target(what string, got, limit float64, format string) string {
	verdict := "met"
	if got > limit {
		verdict = "not met"
	}
	return fmt.Sprintf("- %s: "+format+" (target ≤ "+format+"), %s.\n", what, got, limit, verdict)
}

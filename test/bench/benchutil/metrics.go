package benchutil

import (
	"bufio"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Sample is one line of the Prometheus text format: a metric name, its
// labels and its value.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// ParseMetrics reads the samples named in names (all samples when names is
// empty) from a Prometheus text exposition, such as an API server's
// /metrics. Comments and samples of other metrics are skipped; a line of a
// wanted metric that cannot be parsed is an error naming the line.
func ParseMetrics(text string, names ...string) ([]Sample, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []Sample
	s := bufio.NewScanner(strings.NewReader(text))
	s.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	line := 0
	for s.Scan() {
		line++
		l := strings.TrimSpace(s.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		end := strings.IndexAny(l, "{ \t")
		if end < 0 {
			return nil, fmt.Errorf("line %d: no value: %q", line, l)
		}
		name := l[:end]
		if len(want) > 0 && !want[name] {
			continue
		}
		smp := Sample{Name: name, Labels: map[string]string{}}
		rest := l[end:]
		if strings.HasPrefix(rest, "{") {
			var err error
			if rest, err = parseLabels(rest[1:], smp.Labels); err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, fmt.Errorf("line %d: no value: %q", line, l)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: cannot parse value %q: %w", line, fields[0], err)
		}
		smp.Value = v
		out = append(out, smp)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("cannot read metrics: %w", err)
	}
	return out, nil
}

// parseLabels reads `name="value",...}` into labels and returns what follows
// the closing brace.
func parseLabels(s string, labels map[string]string) (string, error) {
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq < 0 || len(s) < eq+2 || s[eq+1] != '"' {
			return "", fmt.Errorf("malformed labels near %q", s)
		}
		name := strings.TrimSpace(s[:eq])
		s = s[eq+2:]
		var val strings.Builder
		closed := false
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(s[i])
				}
				continue
			}
			if c == '"' {
				s = s[i+1:]
				closed = true
				break
			}
			val.WriteByte(c)
		}
		if !closed {
			return "", fmt.Errorf("unterminated value of label %q", name)
		}
		labels[name] = val.String()
	}
}

// WriteVerbs are the apiserver_request_total verbs that change something.
var WriteVerbs = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "APPLY": true, "DELETE": true, "DELETECOLLECTION": true}

// heartbeat resources are written on a timer by the simulated node and
// leader elections whatever the workload does; they are not counted.
var heartbeat = map[string]bool{"nodes": true, "leases": true}

// WriteKey says which writes a count is of.
type WriteKey struct {
	Verb, Group, Resource, Subresource string
}

func (k WriteKey) String() string {
	r := k.Resource
	if k.Group != "" {
		r += "." + k.Group
	}
	if k.Subresource != "" {
		r += "/" + k.Subresource
	}
	return k.Verb + " " + r
}

// Writes is a count of API write requests by verb and resource.
type Writes map[WriteKey]float64

// WritesOf sums the apiserver_request_total samples of write verbs by verb,
// group, resource and subresource (all response codes together: a refused
// write costs the API server too), leaving out node and lease heartbeats.
func WritesOf(samples []Sample) Writes {
	out := Writes{}
	for _, s := range samples {
		if s.Name != "apiserver_request_total" || !WriteVerbs[s.Labels["verb"]] || heartbeat[s.Labels["resource"]] {
			continue
		}
		k := WriteKey{Verb: s.Labels["verb"], Group: s.Labels["group"], Resource: s.Labels["resource"], Subresource: s.Labels["subresource"]}
		out[k] += s.Value
	}
	return out
}

// ReadVerbs are the apiserver_request_total verbs that read one object or
// a list (WATCH, a long-lived stream, is not a read request here).
var ReadVerbs = map[string]bool{"GET": true, "LIST": true}

// ReadsOf is the number of GET and LIST requests in samples, leaving out
// node and lease heartbeats.
func ReadsOf(samples []Sample) float64 {
	n := 0.0
	for _, s := range samples {
		if s.Name == "apiserver_request_total" && ReadVerbs[s.Labels["verb"]] && !heartbeat[s.Labels["resource"]] {
			n += s.Value
		}
	}
	return n
}

// Sub is w minus before, key by key, leaving out keys that did not change.
func (w Writes) Sub(before Writes) Writes {
	out := Writes{}
	for k, v := range w {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// Total is the number of writes.
func (w Writes) Total() float64 {
	t := 0.0
	for _, v := range w {
		t += v
	}
	return t
}

// String lists the writes, most first, as "PATCH configmaps=3000, ...".
func (w Writes) String() string {
	keys := make([]WriteKey, 0, len(w))
	for k := range w {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if w[keys[i]] != w[keys[j]] {
			return w[keys[i]] > w[keys[j]]
		}
		return keys[i].String() < keys[j].String()
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%.0f", k, w[k])
	}
	return strings.Join(parts, ", ")
}

// Value is the sum of the samples named name (0 when there is none).
func Value(samples []Sample, name string) float64 {
	v := 0.0
	for _, s := range samples {
		if s.Name == name {
			v += s.Value
		}
	}
	return v
}

// ProcCPUSeconds is the user plus system CPU time in a /proc/<pid>/stat
// line, in seconds, for a clock of ticks per second.
func ProcCPUSeconds(stat string, ticks float64) (float64, error) {
	// The command name is in parentheses and may hold spaces: the fields
	// counted from 3 (state) start after the last ')'.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// utime and stime are fields 14 and 15; f[0] is field 3.
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed stat %q", stat)
	}
	u, err := strconv.ParseFloat(f[11], 64)
	if err != nil {
		return 0, fmt.Errorf("cannot parse utime: %w", err)
	}
	s, err := strconv.ParseFloat(f[12], 64)
	if err != nil {
		return 0, fmt.Errorf("cannot parse stime: %w", err)
	}
	return (u + s) / ticks, nil
}

// Percentile is the p-th percentile (0 < p ≤ 100, nearest rank) of
// sorted values; 0 for none.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	if rank < 0 {
		rank = 0
	}
	if rank >= len(sorted) {
		rank = len(sorted) - 1
	}
	return sorted[rank]
}

package analysis

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Masked replaces the value of a Secret-sourced argument wherever a run
// records what it resolved.
const Masked = "*****"

var argRef = regexp.MustCompile(`\{\{\s*args\.([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}`)

// Args are a run's resolved arguments.
type Args struct {
	// Values by name.
	Values map[string]string
	// Secret names the arguments read from Secrets.
	Secret map[string]bool
}

// Escaper prepares a value for where it is substituted.
type Escaper func(string) string

// Raw substitutes values as they are.
func Raw(s string) string { return s }

// PromQL escapes a value for the inside of a PromQL double-quoted string (a
// label value): a value can never end the string and add selectors or
// operators of its own.
func PromQL(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// URL escapes a value for a URL (path segment or query value).
func URL(s string) string { return url.QueryEscape(s) }

// JSON escapes a value for the inside of a JSON string.
func JSON(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// Substitute replaces every {{args.NAME}} in s with its escaped value. It
// returns the resolved string and the same with Secret-sourced values
// masked, for the status. An argument that is not defined is an error
// naming it.
func (a Args) Substitute(s string, esc Escaper) (resolved, shown string, err error) {
	var missing []string
	var b, m strings.Builder
	last := 0
	for _, loc := range argRef.FindAllStringSubmatchIndex(s, -1) {
		name := s[loc[2]:loc[3]]
		b.WriteString(s[last:loc[0]])
		m.WriteString(s[last:loc[0]])
		v, ok := a.Values[name]
		if !ok {
			missing = append(missing, name)
		}
		b.WriteString(esc(v))
		if a.Secret[name] {
			m.WriteString(Masked)
		} else {
			m.WriteString(esc(v))
		}
		last = loc[1]
	}
	b.WriteString(s[last:])
	m.WriteString(s[last:])
	if len(missing) > 0 {
		sort.Strings(missing)
		return "", "", fmt.Errorf("argument %s is not defined", strings.Join(missing, ", "))
	}
	return b.String(), m.String(), nil
}

// Refs lists the arguments s refers to.
func Refs(s string) []string {
	var out []string
	for _, m := range argRef.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

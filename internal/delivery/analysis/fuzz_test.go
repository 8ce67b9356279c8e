package analysis

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzPromQLEscape: whatever a tenant puts in an argument, substituted
// inside a PromQL double-quoted string it reads back as exactly that value
// and never ends the string early.
func FuzzPromQLEscape(f *testing.F) {
	for _, s := range []string{"web", `x"} or vector(1) or {a="`, "a\\\"b", "line\nbreak", "\x00", "ü", "`"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if !utf8.ValidString(v) {
			return
		}
		a := Args{Values: map[string]string{"v": v}}
		got, _, err := a.Substitute(`m{l="{{args.v}}"}`, PromQL)
		if err != nil {
			t.Fatal(err)
		}
		inner := strings.TrimSuffix(strings.TrimPrefix(got, `m{l=`), `}`)
		back, err := strconv.Unquote(inner)
		if err != nil || back != v {
			t.Fatalf("value %q substituted as %s reads back as %q (err %v)", v, got, back, err)
		}
	})
}

package cel

import (
	"errors"
	"fmt"
	"strings"
)

// Segment is a piece of a template string: literal text or an expression.
type Segment struct {
	// Text is the literal text, or the expression without `${` and `}`.
	Text string
	// Expr says the segment is an expression.
	Expr bool
}

// HasExpr reports whether s contains an expression opener.
func HasExpr(s string) bool { return strings.Contains(s, "${") }

// Parse splits a template string into literal and expression segments.
// An expression runs from `${` to the matching `}`, skipping braces inside
// CEL string literals and nested braces (map literals). `$${` is a literal
// `${`.
func Parse(s string) ([]Segment, error) {
	var out []Segment
	var lit strings.Builder
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$${") {
			lit.WriteString("${")
			i += 3
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			lit.WriteByte(s[i])
			i++
			continue
		}
		end, err := exprEnd(s, i+2)
		if err != nil {
			return nil, fmt.Errorf("at offset %d: %w", i, err)
		}
		expr := strings.TrimSpace(s[i+2 : end])
		if expr == "" {
			return nil, fmt.Errorf("at offset %d: empty expression ${}", i)
		}
		if lit.Len() > 0 {
			out = append(out, Segment{Text: lit.String()})
			lit.Reset()
		}
		out = append(out, Segment{Text: expr, Expr: true})
		i = end + 1
	}
	if lit.Len() > 0 || len(out) == 0 {
		out = append(out, Segment{Text: lit.String()})
	}
	return out, nil
}

// exprEnd returns the index of the `}` closing an expression that starts at i.
func exprEnd(s string, i int) (int, error) {
	depth := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"' || c == '\'':
			j, err := stringEnd(s, i)
			if err != nil {
				return 0, err
			}
			i = j + 1
			continue
		case c == '{':
			depth++
		case c == '}':
			if depth == 0 {
				return i, nil
			}
			depth--
		}
		i++
	}
	return 0, errors.New("unterminated expression: missing }")
}

// stringEnd returns the index of the quote closing the CEL string literal at i
// (single, double or triple quoted).
func stringEnd(s string, i int) (int, error) {
	q := s[i : i+1]
	if strings.HasPrefix(s[i:], strings.Repeat(q, 3)) {
		q = strings.Repeat(q, 3)
	}
	for j := i + len(q); j < len(s); j++ {
		if s[j] == '\\' {
			j++
			continue
		}
		if strings.HasPrefix(s[j:], q) {
			return j + len(q) - 1, nil
		}
	}
	return 0, errors.New("unterminated string literal in expression")
}

// Single returns the expression when the template is exactly one `${...}`,
// whose value keeps its type (int, bool, map, list).
func Single(segs []Segment) (string, bool) {
	if len(segs) == 1 && segs[0].Expr {
		return segs[0].Text, true
	}
	return "", false
}

// Expressions returns every expression in a template string.
func Expressions(s string) ([]string, error) {
	segs, err := Parse(s)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, sg := range segs {
		if sg.Expr {
			out = append(out, sg.Text)
		}
	}
	return out, nil
}

package dag

import (
	"fmt"
	"sort"
	"strings"
)

// Graph maps each node to the nodes it depends on.
type Graph map[string][]string

// CycleError names the nodes of a dependency cycle.
type CycleError struct {
	// Cycle lists the nodes in order, the first repeated at the end.
	Cycle []string
}

func (e *CycleError) Error() string {
	return "dependency cycle: " + strings.Join(e.Cycle, " -> ")
}

// Sort returns the nodes so that every node comes after its dependencies;
// ties are broken by name so the order is stable. Dependencies on nodes that
// are not in the graph are an error.
func Sort(g Graph) ([]string, error) {
	names := make([]string, 0, len(g))
	for n := range g {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, d := range g[n] {
			if _, ok := g[d]; !ok {
				return nil, fmt.Errorf("%s depends on unknown resource %q", n, d)
			}
		}
	}
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var out, stack []string
	var visit func(n string) error
	visit = func(n string) error {
		switch color[n] {
		case black:
			return nil
		case grey:
			i := len(stack) - 1
			for stack[i] != n {
				i--
			}
			return &CycleError{Cycle: append(append([]string{}, stack[i:]...), n)}
		}
		color[n] = grey
		stack = append(stack, n)
		deps := append([]string{}, g[n]...)
		sort.Strings(deps)
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		out = append(out, n)
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Reverse returns the order for deletion: dependents before dependencies.
func Reverse(order []string) []string {
	out := make([]string, len(order))
	for i, n := range order {
		out[len(order)-1-i] = n
	}
	return out
}

// Dependents returns, for each node, the nodes that depend on it.
func (g Graph) Dependents() map[string][]string {
	out := map[string][]string{}
	for n, deps := range g {
		for _, d := range deps {
			out[d] = append(out[d], n)
		}
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

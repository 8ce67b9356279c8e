package ownership

import (
	"bytes"
	"reflect"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

// Unchanged reports whether server-side applying desired with fieldManager
// would leave live as it is, without asking the API server (no dry run):
// every field of desired is in live with the same value, and every field
// live's managedFields say fieldManager applied is still in desired (else
// the apply would remove it). Lists are compared whole. live must carry
// fieldManager's Apply entry of managedFields; without it the answer is
// false, so the caller applies.
func Unchanged(desired, live *unstructured.Unstructured, fieldManager string) bool {
	if !Subset(desired.Object, live.Object) {
		return false
	}
	fields := applyFieldsJSON(live, fieldManager)
	if fields == nil {
		return false
	}
	owned := &fieldpath.Set{}
	if err := owned.FromJSON(bytes.NewReader(fields)); err != nil {
		return false
	}
	kept := true
	owned.Iterate(func(p fieldpath.Path) {
		// The field names down to the first list element: a list is
		// compared whole by Subset.
		var names []string
		for _, pe := range p {
			if pe.FieldName == nil {
				break
			}
			names = append(names, *pe.FieldName)
		}
		if len(names) == 0 {
			return
		}
		if _, found, _ := unstructured.NestedFieldNoCopy(desired.Object, names...); !found {
			kept = false
		}
	})
	return kept
}

// Subset reports whether every field of want is present and equal in got
// (numbers compared by value, lists by length and element).
func Subset(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !Subset(v, g[k]) {
				return false
			}
		}
		return true
	case map[string]string:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if g[k] != v {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !Subset(w[i], g[i]) {
				return false
			}
		}
		return true
	case int64:
		switch g := got.(type) {
		case int64:
			return g == w
		case float64:
			return g == float64(w)
		}
		return false
	case float64:
		switch g := got.(type) {
		case int64:
			return float64(g) == w
		case float64:
			return g == w
		}
		return false
	case nil:
		return got == nil
	}
	return reflect.DeepEqual(want, got)
}

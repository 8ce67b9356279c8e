package ownership

import (
	"encoding/json"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The managedFields helpers read an unstructured object's map directly and
// any other object through GetManagedFields; both must give the same answers.
func TestManagedFieldsReadTheSameFromEitherShape(t *testing.T) {
	const me = "strata/xr/x"
	status := entry(me, metav1.ManagedFieldsOperationApply, `{"f:status":{"f:phase":{}}}`)
	status.Subresource = "status"
	entries := []metav1.ManagedFieldsEntry{
		entry("kubectl", metav1.ManagedFieldsOperationUpdate, `{"f:data":{"f:c":{}}}`),
		status,
		entry(me, metav1.ManagedFieldsOperationApply, ownsAB),
		entry("strata", metav1.ManagedFieldsOperationApply, `{"f:data":{"f:old":{}}}`),
	}
	typed := func() *corev1.ConfigMap {
		c := &corev1.ConfigMap{}
		c.SetManagedFields(entries)
		return c
	}
	// As decoded from the API server's JSON (the informers' shape).
	decoded := func(t *testing.T) *unstructured.Unstructured {
		b, err := json.Marshal(typed())
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(append(b[:len(b)-1], []byte(`,"apiVersion":"v1","kind":"ConfigMap"}`)...)); err != nil {
			t.Fatal(err)
		}
		return u
	}

	for _, tc := range []struct {
		manager   string
		has       bool
		wantField string // a field its apply entry owns, "" when none
	}{
		{manager: me, has: true, wantField: "f:b"},
		{manager: "strata", has: true, wantField: "f:old"},
		{manager: "kubectl"}, // an Update entry is not an apply
		{manager: "missing"},
	} {
		t.Run(tc.manager, func(t *testing.T) {
			for shape, obj := range map[string]metav1.Object{"typed": typed(), "unstructured": decoded(t), "set": cm(nil, entries...)} {
				if got := HasApplyEntry(obj, tc.manager); got != tc.has {
					t.Errorf("%s: HasApplyEntry = %v, want %v", shape, got, tc.has)
				}
				fields := applyFieldsJSON(obj, tc.manager)
				if tc.wantField == "" && fields != nil || tc.wantField != "" && !json.Valid(fields) {
					t.Fatalf("%s: applyFieldsJSON = %s", shape, fields)
				}
				if tc.wantField != "" && !containsKey(t, fields, tc.wantField) {
					t.Errorf("%s: applyFieldsJSON = %s, want it to own %s", shape, fields, tc.wantField)
				}
			}
		})
	}

	t.Run("an entry that is not an object is no apply", func(t *testing.T) {
		u := cm(nil, entries...)
		mfs, _, _ := unstructured.NestedFieldNoCopy(u.Object, "metadata", "managedFields")
		u.Object["metadata"].(map[string]any)["managedFields"] = append([]any{"garbage"}, mfs.([]any)...)
		if !HasApplyEntry(u, me) || applyFieldsJSON(u, me) == nil || HasApplyEntry(u, "garbage") {
			t.Errorf("a malformed entry changed the answers for the others")
		}
	})

	t.Run("keep", func(t *testing.T) {
		applies := func(_ string, op metav1.ManagedFieldsOperationType, sub string) bool {
			return op == metav1.ManagedFieldsOperationApply && sub == ""
		}
		for shape, obj := range map[string]metav1.Object{"typed": typed(), "unstructured": decoded(t), "set": cm(nil, entries...)} {
			KeepManagedFields(obj, applies)
			var got []string
			for _, mf := range obj.GetManagedFields() {
				got = append(got, mf.Manager+"/"+string(mf.Operation)+"/"+mf.Subresource)
			}
			if !reflect.DeepEqual(got, []string{me + "/Apply/", "strata/Apply/"}) {
				t.Errorf("%s: kept %v", shape, got)
			}
			KeepManagedFields(obj, func(string, metav1.ManagedFieldsOperationType, string) bool { return false })
			if obj.GetManagedFields() != nil {
				t.Errorf("%s: nothing kept, managedFields = %v", shape, obj.GetManagedFields())
			}
			if u, ok := obj.(*unstructured.Unstructured); ok {
				if _, found, _ := unstructured.NestedFieldNoCopy(u.Object, "metadata", "managedFields"); found {
					t.Errorf("%s: an empty managedFields stays in the object", shape)
				}
			}
		}
	})
}

func containsKey(t *testing.T, fields []byte, key string) bool {
	t.Helper()
	var m map[string]map[string]any
	if err := json.Unmarshal(fields, &m); err != nil {
		t.Fatal(err)
	}
	_, ok := m["f:data"][key]
	return ok
}

// BenchmarkKeepManagedFields compares the cache transform's work on a decoded
// ConfigMap through the map with the GetManagedFields round trip it replaced.
func BenchmarkKeepManagedFields(b *testing.B) {
	entries := []metav1.ManagedFieldsEntry{
		entry("kube-controller-manager", metav1.ManagedFieldsOperationUpdate, `{"f:data":{"f:c":{}}}`),
		entry("strata/xr/x", metav1.ManagedFieldsOperationApply, ownsAB),
	}
	keep := func(_ string, op metav1.ManagedFieldsOperationType, _ string) bool {
		return op == metav1.ManagedFieldsOperationApply
	}
	obj := cm(map[string]any{"a": "1", "b": "2"}, entries...)
	b.Run("map", func(b *testing.B) {
		for b.Loop() {
			KeepManagedFields(obj.DeepCopy(), keep)
		}
	})
	b.Run("GetManagedFields", func(b *testing.B) {
		for b.Loop() {
			u := obj.DeepCopy()
			var kept []metav1.ManagedFieldsEntry
			for _, mf := range u.GetManagedFields() {
				if keep(mf.Manager, mf.Operation, mf.Subresource) {
					kept = append(kept, mf)
				}
			}
			u.SetManagedFields(kept)
		}
	})
}

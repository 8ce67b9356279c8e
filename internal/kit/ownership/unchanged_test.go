package ownership

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func cm(data map[string]any, managers ...metav1.ManagedFieldsEntry) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "x", "namespace": "ns", "labels": map[string]any{"app": "a"}}, "data": data}}
	u.SetManagedFields(managers)
	return u
}

func entry(manager string, op metav1.ManagedFieldsOperationType, fields string) metav1.ManagedFieldsEntry {
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
}

const ownsAB = `{"f:data":{".":{},"f:a":{},"f:b":{}},"f:metadata":{"f:labels":{"f:app":{}}}}`

func TestUnchanged(t *testing.T) {
	const me = "strata/xr/x"
	cases := map[string]struct {
		desired, live *unstructured.Unstructured
		want          bool
	}{
		"same fields and values": {
			desired: cm(map[string]any{"a": "1", "b": "2"}),
			live:    cm(map[string]any{"a": "1", "b": "2"}, entry(me, metav1.ManagedFieldsOperationApply, ownsAB)),
			want:    true,
		},
		"a value changed": {
			desired: cm(map[string]any{"a": "1", "b": "3"}),
			live:    cm(map[string]any{"a": "1", "b": "2"}, entry(me, metav1.ManagedFieldsOperationApply, ownsAB)),
		},
		"a field no longer desired is removed by the apply": {
			desired: cm(map[string]any{"a": "1"}),
			live:    cm(map[string]any{"a": "1", "b": "2"}, entry(me, metav1.ManagedFieldsOperationApply, ownsAB)),
		},
		"someone else's extra field does not matter": {
			desired: cm(map[string]any{"a": "1", "b": "2"}),
			live: cm(map[string]any{"a": "1", "b": "2", "c": "9"}, entry(me, metav1.ManagedFieldsOperationApply, ownsAB),
				entry("kubectl", metav1.ManagedFieldsOperationUpdate, `{"f:data":{"f:c":{}}}`)),
			want: true,
		},
		"drift: someone changed our field": {
			desired: cm(map[string]any{"a": "1", "b": "2"}),
			live:    cm(map[string]any{"a": "1", "b": "changed"}, entry(me, metav1.ManagedFieldsOperationApply, ownsAB)),
		},
		"no managedFields of ours: apply": {
			desired: cm(map[string]any{"a": "1", "b": "2"}),
			live:    cm(map[string]any{"a": "1", "b": "2"}, entry("other", metav1.ManagedFieldsOperationApply, ownsAB)),
		},
		"our Update entry is not an apply": {
			desired: cm(map[string]any{"a": "1", "b": "2"}),
			live:    cm(map[string]any{"a": "1", "b": "2"}, entry(me, metav1.ManagedFieldsOperationUpdate, ownsAB)),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := Unchanged(tc.desired, tc.live, me); got != tc.want {
				t.Errorf("Unchanged() = %v, want %v", got, tc.want)
			}
		})
	}
}

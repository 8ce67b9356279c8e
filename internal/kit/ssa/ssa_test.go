package ssa

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/strata-dev/strata/internal/kit/ownership"
)

func entry(manager string, op metav1.ManagedFieldsOperationType, fields string) metav1.ManagedFieldsEntry {
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, APIVersion: "v1", FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
}

const (
	apply  = metav1.ManagedFieldsOperationApply
	update = metav1.ManagedFieldsOperationUpdate
	mine   = "strata/xapp/a"
)

func TestMoveManagers(t *testing.T) {
	type want struct {
		manager string
		op      metav1.ManagedFieldsOperationType
		fields  string
	}
	cases := map[string]struct {
		in    []metav1.ManagedFieldsEntry
		moved bool
		want  []want
	}{
		"nothing to move": {
			in:   []metav1.ManagedFieldsEntry{entry(mine, apply, `{"f:data":{"f:a":{}}}`), entry("kubectl", update, `{"f:data":{"f:b":{}}}`)},
			want: []want{{mine, apply, `{"f:data":{"f:a":{}}}`}, {"kubectl", update, `{"f:data":{"f:b":{}}}`}},
		},
		"legacy entry renamed": {
			in:    []metav1.ManagedFieldsEntry{entry(LegacyFieldManager, apply, `{"f:data":{"f:a":{},"f:gone":{}}}`), entry("kubectl", update, `{"f:data":{"f:b":{}}}`)},
			moved: true,
			want:  []want{{mine, apply, `{"f:data":{"f:a":{},"f:gone":{}}}`}, {"kubectl", update, `{"f:data":{"f:b":{}}}`}},
		},
		"legacy merged into the writer's own entry (no field owned twice)": {
			in: []metav1.ManagedFieldsEntry{
				entry("kubectl", update, `{"f:data":{"f:b":{}}}`),
				entry(mine, apply, `{"f:data":{"f:a":{}}}`),
				entry(LegacyFieldManager, apply, `{"f:data":{"f:a":{},"f:gone":{}}}`),
			},
			moved: true,
			want:  []want{{"kubectl", update, `{"f:data":{"f:b":{}}}`}, {mine, apply, `{"f:data":{"f:a":{},"f:gone":{}}}`}},
		},
		"legacy update entries and subresources are not the writer's": {
			in: []metav1.ManagedFieldsEntry{
				entry(LegacyFieldManager, update, `{"f:data":{"f:u":{}}}`),
				func() metav1.ManagedFieldsEntry {
					e := entry(LegacyFieldManager, apply, `{"f:status":{}}`)
					e.Subresource = "status"
					return e
				}(),
			},
			want: []want{{LegacyFieldManager, update, `{"f:data":{"f:u":{}}}`}, {LegacyFieldManager, apply, `{"f:status":{}}`}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			out, moved, err := MoveManagers(tc.in, []string{LegacyFieldManager}, mine)
			if err != nil {
				t.Fatal(err)
			}
			if moved != tc.moved {
				t.Errorf("moved = %v, want %v", moved, tc.moved)
			}
			var got []want
			for _, f := range out {
				got = append(got, want{f.Manager, f.Operation, string(f.FieldsV1.Raw)})
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("MoveManagers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMoveManagersBadFields(t *testing.T) {
	_, _, err := MoveManagers([]metav1.ManagedFieldsEntry{entry(LegacyFieldManager, apply, `not json`)}, []string{LegacyFieldManager}, mine)
	if err == nil || !strings.Contains(err.Error(), `field manager "strata"`) {
		t.Fatalf("err = %v, want one naming the field manager", err)
	}
}

func TestUnchangedWithLegacyEntry(t *testing.T) {
	desired := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "data": map[string]any{"a": "1"}}}
	live := desired.DeepCopy()
	live.SetManagedFields([]metav1.ManagedFieldsEntry{entry(mine, apply, `{"f:data":{"f:a":{}}}`)})
	if !Unchanged(desired, live, mine) {
		t.Fatal("Unchanged = false for an object the writer applied with these values")
	}
	live.SetManagedFields(append(live.GetManagedFields(), entry(LegacyFieldManager, apply, `{"f:data":{"f:a":{}}}`)))
	if Unchanged(desired, live, mine) {
		t.Fatal("Unchanged = true for an object that still has the legacy manager's entry")
	}
	if Unchanged(desired, nil, mine) {
		t.Fatal("Unchanged = true for a missing object")
	}
}

func TestPolicyFor(t *testing.T) {
	for d, want := range map[ownership.Decision]Policy{ownership.Create: Shared, ownership.Update: Force, ownership.Adopt: Force} {
		if got := PolicyFor(d); got != want {
			t.Errorf("PolicyFor(%v) = %v, want %v", d, got, want)
		}
	}
}

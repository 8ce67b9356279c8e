package ownership

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func obj(mut func(u *unstructured.Unstructured)) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("ConfigMap")
	u.SetNamespace("kube-system")
	u.SetName("victim")
	if mut != nil {
		mut(u)
	}
	return u
}

func TestDecide(t *testing.T) {
	xr := Owner{APIVersion: "example.org/v1", Kind: "XApp", Name: "a-1", UID: "uid-a"}
	other := Owner{APIVersion: "example.org/v1", Kind: "XApp", Name: "b-1", UID: "uid-b"}
	sync := Owner{Kind: "Sync", Namespace: "team-a", Name: "app", Mark: SyncLabels}
	mr := Owner{APIVersion: "sql.strata.dev/v1alpha1", Kind: "Role", Name: "r", UID: "uid-r", Mark: OwnerRef}
	cases := map[string]struct {
		owner    Owner
		obj      *unstructured.Unstructured
		want     Decision
		conflict string // substring of the conflict error; empty: no error
	}{
		"absent is created":          {owner: xr, want: Create},
		"controlled is updated":      {owner: xr, obj: obj(func(u *unstructured.Unstructured) { xr.SetMark(u) }), want: Update},
		"foreign controller refused": {owner: xr, obj: obj(func(u *unstructured.Unstructured) { other.SetMark(u) }), conflict: "owned by XApp b-1"},
		"unowned refused":            {owner: xr, obj: obj(nil), conflict: "ConfigMap kube-system/victim already exists and is owned by another writer"},
		"field managers named": {owner: sync, obj: obj(func(u *unstructured.Unstructured) {
			u.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "kubectl-client-side-apply"}, {Manager: "helm"}})
		}), conflict: "field managers helm, kubectl-client-side-apply"},
		"sync labels are the sync's": {owner: sync, obj: obj(func(u *unstructured.Unstructured) { sync.SetMark(u) }), want: Update},
		"another sync refused": {owner: sync, obj: obj(func(u *unstructured.Unstructured) {
			u.SetLabels(map[string]string{LabelSyncName: "app", LabelSyncNamespace: "team-b"})
		}), conflict: "owned by Sync team-b/app"},
		"adopt annotation hands over": {owner: sync, obj: obj(func(u *unstructured.Unstructured) {
			u.SetAnnotations(map[string]string{AnnotationAdopt: "Sync/team-a/app"})
		}), want: Adopt},
		"adopt annotation for someone else": {owner: sync, obj: obj(func(u *unstructured.Unstructured) {
			u.SetAnnotations(map[string]string{AnnotationAdopt: "Sync/team-b/app"})
		}), conflict: "owned by another writer"},
		"owner reference marks the owner's": {owner: mr, obj: obj(func(u *unstructured.Unstructured) { mr.SetMark(u) }), want: Update},
		"owner reference beside another controller is still the owner's": {owner: mr, obj: obj(func(u *unstructured.Unstructured) {
			other.SetMark(u)
			mr.SetMark(u)
		}), want: Update},
		"another owner reference refused": {owner: mr, obj: obj(func(u *unstructured.Unstructured) {
			u.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "x", UID: "uid-x"}})
		}), conflict: "owned by another writer"},
		"adopt annotation does not override a controller": {owner: xr, obj: obj(func(u *unstructured.Unstructured) {
			other.SetMark(u)
			u.SetAnnotations(map[string]string{AnnotationAdopt: xr.Ref()})
		}), conflict: "owned by XApp b-1"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var o metav1.Object
			if tc.obj != nil {
				o = tc.obj
			}
			got, err := Decide(o, tc.owner)
			if tc.conflict != "" {
				if !IsConflict(err) || !strings.Contains(err.Error(), tc.conflict) {
					t.Fatalf("Decide() error = %v, want a conflict containing %q", err, tc.conflict)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Decide() = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestFieldManager(t *testing.T) {
	short := Owner{Kind: "Sync", Namespace: "team-a", Name: "app"}
	if got := short.FieldManager(); got != "strata/sync/team-a/app" {
		t.Errorf("FieldManager() = %q", got)
	}
	long := Owner{Kind: "XPostgreSQLDatabase", Name: strings.Repeat("x", 200)}
	long2 := Owner{Kind: "XPostgreSQLDatabase", Name: strings.Repeat("x", 199) + "y"}
	a, b := long.FieldManager(), long2.FieldManager()
	if len(a) > 128 || len(b) > 128 || a == b {
		t.Errorf("long names: %q (%d) and %q (%d) must be distinct and at most 128", a, len(a), b, len(b))
	}
}

func TestDescribeTyped(t *testing.T) {
	cm := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "victim"}}
	if got := Describe(cm); got != "ConfigMap kube-system/victim" {
		t.Errorf("Describe(typed) = %q", got)
	}
	cm.Kind = ""
	if got := Describe(cm); got != "kube-system/victim" {
		t.Errorf("Describe(typed without kind) = %q", got)
	}
}

// An owner-reference mark is not a controller reference, and keeps the
// references others put there.
func TestSetMarkOwnerRef(t *testing.T) {
	mr := Owner{APIVersion: "sql.strata.dev/v1alpha1", Kind: "Role", Name: "r", UID: "uid-r", Mark: OwnerRef}
	xr := Owner{APIVersion: "example.org/v1", Kind: "XApp", Name: "a-1", UID: "uid-a"}
	u := obj(nil)
	xr.SetMark(u)
	mr.SetMark(u)
	mr.SetMark(u)
	refs := u.GetOwnerReferences()
	if len(refs) != 2 {
		t.Fatalf("owner references = %+v, want the XR's and the Role's once", refs)
	}
	if c := metav1.GetControllerOfNoCopy(u); c == nil || c.UID != "uid-a" {
		t.Errorf("controller = %+v, want the XR", c)
	}
	if !mr.Controls(u) || !xr.Controls(u) {
		t.Errorf("Controls: role %v, xr %v; want both", mr.Controls(u), xr.Controls(u))
	}
}

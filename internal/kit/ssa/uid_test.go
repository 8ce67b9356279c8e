package ssa

import (
	"context"
	"fmt"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, &env, testenv.Start))
}

func configMap(name, value string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"data": map[string]any{"v": value}}}
	u.SetAPIVersion("v1")
	u.SetKind("ConfigMap")
	u.SetNamespace("default")
	u.SetName(name)
	return u
}

// TestUIDPrecondition holds the API server to what Options.UID relies on:
// an apply with the object's UID goes through; one with the UID of an
// object that was deleted and made again by someone else changes nothing,
// even forced, and IsReplaced says so; one whose object is gone does not
// make it again.
func TestUIDPrecondition(t *testing.T) {
	ctx := context.Background()
	get := func(name string) (*corev1.ConfigMap, error) {
		cm := &corev1.ConfigMap{}
		return cm, env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, cm)
	}
	cases := map[string]struct {
		then        string // what happens after the first apply: "", "replaced" or "deleted"
		wantData    string // the object's v after the second apply ("" for none)
		wantReplace bool
	}{
		"same object":               {wantData: "ours-2"},
		"replaced by someone else":  {then: "replaced", wantData: "theirs", wantReplace: true},
		"deleted is not made again": {then: "deleted"},
	}
	i := 0
	for name, tc := range cases {
		i++
		t.Run(name, func(t *testing.T) {
			cmName := fmt.Sprintf("uid-precondition-%d", i)
			first := configMap(cmName, "ours")
			if err := Apply(ctx, env.Client, first, Options{FieldManager: "strata-test"}); err != nil {
				t.Fatal(err)
			}
			switch tc.then {
			case "replaced", "deleted":
				if err := env.Client.Delete(ctx, first); err != nil {
					t.Fatal(err)
				}
			}
			if tc.then == "replaced" {
				if err := env.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: cmName},
					Data: map[string]string{"v": "theirs"}}, client.FieldOwner("someone-else")); err != nil {
					t.Fatal(err)
				}
			}
			err := Apply(ctx, env.Client, configMap(cmName, "ours-2"), Options{FieldManager: "strata-test", Policy: Force, UID: first.GetUID()})
			if IsReplaced(err) != tc.wantReplace {
				t.Errorf("apply: %v; IsReplaced = %v, want %v", err, IsReplaced(err), tc.wantReplace)
			}
			if tc.wantData == "ours-2" && err != nil {
				t.Fatalf("apply with the object's own UID: %v", err)
			}
			if tc.wantData != "ours-2" && err == nil {
				t.Fatal("apply with a UID that is not the object's went through")
			}
			cm, err := get(cmName)
			switch {
			case tc.wantData == "":
				if err == nil {
					t.Errorf("the deleted object was made again: %v", cm.Data)
				}
			case err != nil:
				t.Fatal(err)
			case cm.Data["v"] != tc.wantData:
				t.Errorf("v = %q, want %q", cm.Data["v"], tc.wantData)
			case tc.then == "replaced" && HasApplyEntry(cm, "strata-test"):
				t.Errorf("the replacement took the apply's fields: %v", cm.ManagedFields)
			}
		})
	}
}

package apply_test

import (
	"context"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/gitops/apply"
	"github.com/strata-dev/strata/internal/kit/ownership"
	"github.com/strata-dev/strata/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, &env, testenv.Start))
}

// TestReplacedObjectIsNotTakenOver: a Sync's object is deleted and made
// again by someone else between the applier's ownership check and its
// apply. The apply fails naming what happened, and the new object keeps its
// data and gets none of the Sync's labels.
func TestReplacedObjectIsNotTakenOver(t *testing.T) {
	ctx := context.Background()
	owner := ownership.Owner{APIVersion: "gitops.strata.dev/v1alpha1", Kind: "Sync", Namespace: "default", Name: "app", UID: "5b0d6a6e-0000-4000-8000-0000000000aa", Mark: ownership.SyncLabels}
	desired := func(v string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"data": map[string]any{"v": v}}}
		u.SetAPIVersion("v1")
		u.SetKind("ConfigMap")
		u.SetNamespace("default")
		u.SetName("replaced")
		return u
	}
	a := &apply.Applier{Client: env.Client, Owner: owner}
	if _, err := a.Apply(ctx, []*unstructured.Unstructured{desired("v1")}); err != nil {
		t.Fatal(err)
	}
	var hook testenv.RequestHook
	hooked, err := client.New(hook.Hooked(env.Config), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a.Client = hooked
	replaced := testenv.ReplaceBefore(t, &hook, env.Client, testenv.BeforeApply, "/namespaces/default/configmaps/replaced",
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "replaced"}, Data: map[string]string{"v": "theirs"}})
	_, err = a.Apply(ctx, []*unstructured.Unstructured{desired("v2")})
	if err == nil || !strings.Contains(err.Error(), "ConfigMap/default/replaced") || !strings.Contains(err.Error(), "deleted and made again") {
		t.Errorf("apply over the replacement: %v, want an error naming the object and what happened", err)
	}
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "replaced"}, cm); err != nil {
		t.Fatal(err)
	}
	if !replaced.Load() || cm.Data["v"] != "theirs" || len(cm.Labels) != 0 {
		t.Errorf("replaced=%v; the replacement has data %v labels %v, want its own data and no labels", replaced.Load(), cm.Data, cm.Labels)
	}
}

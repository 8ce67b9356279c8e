package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/gitops/gittest"
)

// TestSuspendDeleteAndEvents: a suspended Sync keeps its revision and
// catches up when resumed; deleting a Sync prunes what it applied except
// objects marked prune: disabled (a suspended Sync's deletion prunes
// nothing, as in Flux); the actions show up as events.
func TestSuspendDeleteAndEvents(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	repo := gittest.NewRepo(t, t.TempDir(), "app")
	h := repo.Commit("one", map[string]string{"app/a.yaml": configMap("a"), "app/keep.yaml": configMap("keep", "strata.dev/prune: disabled")})
	createRepo(t, ns, "src", repo.URL(), nil, "")
	createSync(t, ns, "app", "src", "app", nil)
	rev1 := "main@sha1:" + h
	waitSync(t, ns, "app", metav1.ConditionTrue, rev1)

	s := getSync(t, ns, "app")
	patch := client.MergeFrom(s.DeepCopy())
	s.Spec.Suspend = true
	if err := env.Client.Patch(ctx, s, patch); err != nil {
		t.Fatal(err)
	}
	push(t, repo, ns, "src", "two", map[string]string{"app/b.yaml": configMap("b")})
	time.Sleep(2 * time.Second)
	if exists(t, "v1", "ConfigMap", ns, "b") || getSync(t, ns, "app").Status.LastAppliedRevision != rev1 {
		t.Fatal("a suspended Sync applied a new revision")
	}

	eventually(t, 10*time.Second, "events recorded", func() (bool, string) {
		list := &eventsv1.EventList{}
		if err := env.Client.List(ctx, list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		seen := map[string]bool{}
		for _, e := range list.Items {
			seen[e.Regarding.Kind+"/"+e.Reason] = true
		}
		return seen["GitRepository/"+gitopsv1.EventNewArtifact] && seen["Sync/"+gitopsv1.EventApplied], ""
	})

	// Resumed, it catches up with the source.
	s = getSync(t, ns, "app")
	patch = client.MergeFrom(s.DeepCopy())
	s.Spec.Suspend = false
	if err := env.Client.Patch(ctx, s, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "resumed Sync applies the new revision", func() (bool, string) { return exists(t, "v1", "ConfigMap", ns, "b"), "" })

	if err := env.Client.Delete(ctx, getSync(t, ns, "app")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "Sync deleted and its objects pruned", func() (bool, string) {
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, &gitopsv1.Sync{})
		return err != nil && !exists(t, "v1", "ConfigMap", ns, "a") && !exists(t, "v1", "ConfigMap", ns, "b"), ""
	})
	if !exists(t, "v1", "ConfigMap", ns, "keep") {
		t.Error("deleting the Sync pruned an object marked strata.dev/prune: disabled")
	}
}

// TestEventsOfANewSync: a new Sync's first reconcile records one event, the
// Applied event naming what it created (no ReconciliationSucceeded beside it:
// there was nothing to recover from); a failure and its fix record the
// failure and the recovery that Alerts in transitions mode send.
func TestEventsOfANewSync(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	repo := gittest.NewRepo(t, t.TempDir(), "app")
	h := repo.Commit("one", map[string]string{"app/a.yaml": configMap("a")})
	createRepo(t, ns, "src", repo.URL(), nil, "")
	createSync(t, ns, "app", "src", "app", nil)
	waitSync(t, ns, "app", metav1.ConditionTrue, "main@sha1:"+h)
	push(t, repo, ns, "src", "broken", map[string]string{"app/broken.yaml": "kind: [\n"})
	waitSync(t, ns, "app", metav1.ConditionFalse, "invalid YAML")
	fixed := push(t, repo, ns, "src", "fix", map[string]string{"app/broken.yaml": configMap("b")})
	waitSync(t, ns, "app", metav1.ConditionTrue, fixed)

	var notes map[string][]string
	eventually(t, 10*time.Second, "the failure and the recovery recorded", func() (bool, string) {
		list := &eventsv1.EventList{}
		if err := env.Client.List(ctx, list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		notes = map[string][]string{}
		for _, e := range list.Items {
			if e.Regarding.Kind == "Sync" {
				notes[e.Reason] = append(notes[e.Reason], e.Note)
			}
		}
		return len(notes[gitopsv1.ReasonBuildFailed]) > 0 && len(notes[gitopsv1.ReasonReconciliationSucceeded]) > 0, fmt.Sprint(notes)
	})
	if got := notes[gitopsv1.ReasonReconciliationSucceeded]; len(got) != 1 || got[0] != "applied revision "+fixed {
		t.Errorf("ReconciliationSucceeded events: %q, want only the recovery at %s", got, fixed)
	}
	if got := notes[gitopsv1.EventApplied]; len(got) != 2 || !strings.Contains(strings.Join(got, "\n"), "created ConfigMap/"+ns+"/a") {
		t.Errorf("Applied events: %q, want the first apply's (creating ConfigMap a) and the fix's", got)
	}
}

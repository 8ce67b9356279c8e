package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

const noteXRD = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: CompositeResourceDefinition
metadata: {name: xnotes.test.strata.dev}
spec:
  group: test.strata.dev
  names: {kind: XNote, plural: xnotes}
  claimNames: {kind: Note, plural: notes}
  defaultCompositionUpdatePolicy: Manual
  versions:
  - name: v1alpha1
    served: true
    referenceable: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              text: {type: string}
`

func noteComposition(name, label, suffix string) string {
	return fmt.Sprintf(`
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: %s, labels: {flavour: %s}}
spec:
  compositeTypeRef: {apiVersion: test.strata.dev/v1alpha1, kind: XNote}
  environment: {selector: {matchLabels: {scope: notes}}}
  resources:
  - name: note
    template:
      apiVersion: v1
      kind: ConfigMap
      data: {text: "${xr.spec.text}%s", region: "${environment.region}"}
`, name, label, suffix)
}

// TestSelectionRevisionsEnvironmentAndPause covers composition selection by
// label, Manual revision pinning, EnvironmentConfig data and the paused
// annotation.
func TestSelectionRevisionsEnvironmentAndPause(t *testing.T) {
	ctx := context.Background()
	apply(t, noteXRD)
	apply(t, "{apiVersion: apiextensions.strata.dev/v1alpha1, kind: EnvironmentConfig, metadata: {name: notes-env, labels: {scope: notes}}, data: {region: eu-west}}")
	apply(t, noteComposition("note-plain", "plain", ""))
	apply(t, noteComposition("note-loud", "loud", "!"))
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1ObjectMeta("team-n")}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	noteGVK := schema.GroupVersionKind{Group: "test.strata.dev", Version: "v1alpha1", Kind: "Note"}
	eventually(t, 30*time.Second, "Note kind served", func() error {
		_, err := get(noteGVK, "team-n", "none")
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("not served: %v", err)
	})
	apply(t, "{apiVersion: test.strata.dev/v1alpha1, kind: Note, metadata: {name: n1, namespace: team-n}, spec: {text: hi, compositionSelector: {matchLabels: {flavour: loud}}}}")
	xrName := controllerXRName("team-n", "n1")
	data := func() (map[string]string, error) {
		cm, err := get(cmGVK, "team-n", xrName+"-note")
		if err != nil {
			return nil, err
		}
		d, _, _ := unstructured.NestedStringMap(cm.Object, "data")
		return d, nil
	}
	eventually(t, 30*time.Second, "selected by label, environment read", func() error {
		d, err := data()
		if err != nil {
			return err
		}
		if d["text"] != "hi!" || d["region"] != "eu-west" {
			return fmt.Errorf("data = %v", d)
		}
		return nil
	})
	xr, err := get(xrGVK.GroupVersion().WithKind("XNote"), "", xrName)
	if err != nil {
		t.Fatal(err)
	}
	if n, _, _ := unstructured.NestedString(xr.Object, "spec", "compositionRef", "name"); n != "note-loud" {
		t.Errorf("compositionRef = %q", n)
	}
	pinned, _, _ := unstructured.NestedString(xr.Object, "spec", "compositionRevisionRef", "name")
	if pinned == "" {
		t.Fatal("no compositionRevisionRef recorded")
	}

	// Manual: a new revision does not move the XR.
	apply(t, noteComposition("note-loud", "loud", "!!"))
	eventually(t, 30*time.Second, "second revision", func() error {
		c, err := get(compGVK, "", "note-loud")
		if err != nil {
			return err
		}
		if r, _, _ := unstructured.NestedInt64(c.Object, "status", "latestRevision"); r != 2 {
			return fmt.Errorf("latestRevision = %d", r)
		}
		return nil
	})
	apply(t, "{apiVersion: test.strata.dev/v1alpha1, kind: Note, metadata: {name: n1, namespace: team-n}, spec: {text: ho, compositionSelector: {matchLabels: {flavour: loud}}}}")
	eventually(t, 30*time.Second, "pinned revision renders", func() error {
		d, err := data()
		if err != nil {
			return err
		}
		if d["text"] != "ho!" {
			return fmt.Errorf("text = %q, want the pinned revision's ho!", d["text"])
		}
		return nil
	})
	// Switching to Automatic follows the latest revision.
	apply(t, "{apiVersion: test.strata.dev/v1alpha1, kind: Note, metadata: {name: n1, namespace: team-n}, spec: {text: ho, compositionUpdatePolicy: Automatic, compositionSelector: {matchLabels: {flavour: loud}}}}")
	eventually(t, 30*time.Second, "latest revision renders", func() error {
		d, err := data()
		if err != nil {
			return err
		}
		if d["text"] != "ho!!" {
			return fmt.Errorf("text = %q", d["text"])
		}
		return nil
	})

	// A claim in another namespace cannot take over this XR.
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1ObjectMeta("team-m")}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	apply(t, fmt.Sprintf("{apiVersion: test.strata.dev/v1alpha1, kind: Note, metadata: {name: thief, namespace: team-m}, spec: {text: mine, resourceRef: {apiVersion: test.strata.dev/v1alpha1, kind: XNote, name: %s}}}", xrName))
	eventually(t, 30*time.Second, "binding to another claim's XR refused", func() error {
		c, err := get(noteGVK, "team-m", "thief")
		if err != nil {
			return err
		}
		if s, _, m := condition(c, "Synced"); s != "False" || !strings.Contains(m, "is bound to claim team-n/n1") {
			return fmt.Errorf("Synced=%s %q", s, m)
		}
		return nil
	})
	if d, err := data(); err != nil || d["text"] == "mine" {
		t.Errorf("the other claim changed the XR: %v %v", d, err)
	}
	thief, _ := get(noteGVK, "team-m", "thief")
	if err := env.Client.Delete(ctx, thief); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "refused claim deleted without touching the XR", func() error {
		if _, err := get(noteGVK, "team-m", "thief"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there: %v", err)
		}
		if _, err := get(xrGVK.GroupVersion().WithKind("XNote"), "", xrName); err != nil {
			return fmt.Errorf("XR gone: %v", err)
		}
		return nil
	})

	// Paused: changes wait until the annotation goes.
	apply(t, "{apiVersion: test.strata.dev/v1alpha1, kind: Note, metadata: {name: n1, namespace: team-n, annotations: {strata.dev/paused: 'true'}}, spec: {text: paused, compositionUpdatePolicy: Automatic, compositionSelector: {matchLabels: {flavour: loud}}}}")
	eventually(t, 30*time.Second, "claim reports that it is paused", func() error {
		c, err := get(noteGVK, "team-n", "n1")
		if err != nil {
			return err
		}
		if s, r, _ := condition(c, "Synced"); s != "False" || r != "ReconciliationPaused" {
			return fmt.Errorf("Synced=%s %s", s, r)
		}
		return nil
	})
	if d, err := data(); err != nil || d["text"] != "ho!!" {
		t.Errorf("paused claim changed its resources: %v %v", d, err)
	}
	apply(t, "{apiVersion: test.strata.dev/v1alpha1, kind: Note, metadata: {name: n1, namespace: team-n, annotations: {strata.dev/paused: 'false'}}, spec: {text: resumed, compositionUpdatePolicy: Automatic, compositionSelector: {matchLabels: {flavour: loud}}}}")
	eventually(t, 30*time.Second, "resumed", func() error {
		d, err := data()
		if err != nil {
			return err
		}
		if !strings.HasPrefix(d["text"], "resumed") {
			return fmt.Errorf("text = %q", d["text"])
		}
		return nil
	})
}

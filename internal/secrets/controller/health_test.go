package controller

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/kit/health"
)

// An ExternalSecret reads as the controllers mark it to kit/health, the
// evaluator that gates claims on what their Composition composes and Syncs
// on what they apply: a claim composing an ExternalSecret is Ready only
// once its Secret is synced.
func TestExternalSecretHealth(t *testing.T) {
	cases := map[string]struct {
		mark   func(*secretsv1.ExternalSecret)
		ready  bool
		failed bool
	}{
		"just created":  {mark: func(e *secretsv1.ExternalSecret) { conditions.EnsureInitialized(e) }},
		"key not found": {mark: func(e *secretsv1.ExternalSecret) { conditions.MarkFailed(e, secretsv1.ReasonKeyNotFound, "x") }},
		"conflict": {mark: func(e *secretsv1.ExternalSecret) {
			conditions.MarkStalled(e, secretsv1.ReasonSecretConflict, "x")
			e.Status.ObservedGeneration = e.Generation
		}, failed: true},
		"synced": {mark: func(e *secretsv1.ExternalSecret) {
			conditions.MarkReady(e, secretsv1.ReasonSecretSynced, "ok")
			e.Status.ObservedGeneration = e.Generation
		}, ready: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			es := &secretsv1.ExternalSecret{TypeMeta: metav1.TypeMeta{APIVersion: secretsv1.GroupVersion.String(), Kind: "ExternalSecret"},
				ObjectMeta: metav1.ObjectMeta{Name: "e", Namespace: "n", Generation: 1}}
			tc.mark(es)
			obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(es)
			if err != nil {
				t.Fatal(err)
			}
			h := health.Compute(&unstructured.Unstructured{Object: obj})
			if h.Ready() != tc.ready {
				t.Errorf("ready = %v, want %v (%s: %s)", h.Ready(), tc.ready, h.Status, h.Message)
			}
			if failed := h.Status == health.Failed; failed != tc.failed {
				t.Errorf("status = %s, want failed %v", h.Status, tc.failed)
			}
		})
	}
}

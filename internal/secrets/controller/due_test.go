package controller

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
)

func TestDue(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	synced := func(mut func(*secretsv1.ExternalSecret)) *secretsv1.ExternalSecret {
		es := &secretsv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Name: "e", Generation: 2}}
		es.Spec.RefreshInterval = &metav1.Duration{Duration: time.Hour}
		es.Status.ObservedGeneration = 2
		es.Status.RefreshTime = metav1.NewTime(now.Add(-10 * time.Minute))
		conditions.MarkReady(es, secretsv1.ReasonSecretSynced, "ok")
		if mut != nil {
			mut(es)
		}
		return es
	}
	data := map[string][]byte{"k": []byte("v")}
	ours := &corev1.Secret{Data: data, ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
		saltAnnotation: "s", secretsv1.DataHashAnnotation: dataHash("s", data)}}}
	tampered := ours.DeepCopy()
	tampered.Data = map[string][]byte{"k": []byte("other")}
	cases := map[string]struct {
		es      *secretsv1.ExternalSecret
		target  *corev1.Secret
		due     bool
		waitMin time.Duration
	}{
		"fresh: wait for the rest of the interval": {es: synced(nil), target: ours, waitMin: 50 * time.Minute},
		"interval passed": {es: synced(func(e *secretsv1.ExternalSecret) {
			e.Status.RefreshTime = metav1.NewTime(now.Add(-2 * time.Hour))
		}), target: ours, due: true},
		"spec changed":           {es: synced(func(e *secretsv1.ExternalSecret) { e.Generation = 3 }), target: ours, due: true},
		"last attempt failed":    {es: synced(func(e *secretsv1.ExternalSecret) { conditions.MarkFailed(e, "KeyNotFound", "x") }), target: ours, due: true},
		"target deleted":         {es: synced(nil), due: true},
		"target changed by hand": {es: synced(nil), target: tampered, due: true},
		"manual refresh": {es: synced(func(e *secretsv1.ExternalSecret) {
			e.Annotations = map[string]string{secretsv1.ReconcileRequestAnnotation: "now"}
		}), target: ours, due: true},
		"manual refresh handled": {es: synced(func(e *secretsv1.ExternalSecret) {
			e.Annotations = map[string]string{secretsv1.ReconcileRequestAnnotation: "now"}
			e.Status.LastHandledReconcileAt = "now"
		}), target: ours, waitMin: 50 * time.Minute},
		"OnChange never polls": {es: synced(func(e *secretsv1.ExternalSecret) {
			e.Spec.RefreshPolicy = secretsv1.RefreshPolicyOnChange
			e.Status.RefreshTime = metav1.NewTime(now.Add(-2 * time.Hour))
		}), target: ours},
		"CreatedOnce never polls": {es: synced(func(e *secretsv1.ExternalSecret) {
			e.Spec.RefreshPolicy = secretsv1.RefreshPolicyCreatedOnce
			e.Status.RefreshTime = metav1.NewTime(now.Add(-2 * time.Hour))
		}), target: ours},
		"OnChange fetches for a spec change": {es: synced(func(e *secretsv1.ExternalSecret) {
			e.Spec.RefreshPolicy = secretsv1.RefreshPolicyOnChange
			e.Generation = 3
		}), target: ours, due: true},
		"CreatedOnce ignores a spec change": {es: synced(func(e *secretsv1.ExternalSecret) {
			e.Spec.RefreshPolicy = secretsv1.RefreshPolicyCreatedOnce
			e.Generation = 3
		}), target: ours},
		"CreatedOnce fetches on a manual refresh": {es: synced(func(e *secretsv1.ExternalSecret) {
			e.Spec.RefreshPolicy = secretsv1.RefreshPolicyCreatedOnce
			e.Annotations = map[string]string{secretsv1.ReconcileRequestAnnotation: "now"}
		}), target: ours, due: true},
		"CreatedOnce retries until the first sync": {es: synced(func(e *secretsv1.ExternalSecret) {
			e.Spec.RefreshPolicy = secretsv1.RefreshPolicyCreatedOnce
			conditions.MarkFailed(e, "KeyNotFound", "x")
		}), target: ours, due: true},
		"CreatedOnce recreates a deleted Secret": {es: synced(func(e *secretsv1.ExternalSecret) {
			e.Spec.RefreshPolicy = secretsv1.RefreshPolicyCreatedOnce
		}), due: true},
		"interval 0 fetches once": {es: synced(func(e *secretsv1.ExternalSecret) {
			e.Spec.RefreshInterval = &metav1.Duration{}
			e.Status.RefreshTime = metav1.NewTime(now.Add(-2 * time.Hour))
		}), target: ours},
		"None ignores the target": {es: synced(func(e *secretsv1.ExternalSecret) {
			e.Spec.Target.CreationPolicy = secretsv1.CreatePolicyNone
		}), waitMin: 50 * time.Minute},
	}
	r := &esReconciler{now: func() time.Time { return now }}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			due, wait := r.due(tc.es, tc.target)
			if due != tc.due {
				t.Fatalf("due = %v, want %v", due, tc.due)
			}
			if wait < tc.waitMin || (tc.waitMin == 0 && wait != 0) || wait > tc.waitMin+tc.waitMin/5+time.Minute {
				t.Errorf("wait = %v, want about %v", wait, tc.waitMin)
			}
		})
	}
}

func TestSyncedVersionIsStable(t *testing.T) {
	mk := func() *secretsv1.ExternalSecret {
		es := &secretsv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
		es.Spec.RefreshInterval = &metav1.Duration{Duration: time.Hour}
		es.Spec.Target.Template = &secretsv1.ExternalSecretTemplate{Data: map[string]string{"a": "b"}}
		return es
	}
	a, b := mk(), mk()
	if syncedVersion(a) != syncedVersion(b) {
		t.Errorf("the same spec gives %s and %s", syncedVersion(a), syncedVersion(b))
	}
	b.Spec.Target.Template.Data["a"] = "c"
	if syncedVersion(a) == syncedVersion(b) {
		t.Error("a changed spec gives the same version")
	}
}

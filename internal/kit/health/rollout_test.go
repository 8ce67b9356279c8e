package health

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/strata-dev/strata/internal/kit/podtemplate"
)

// TestRolloutTarget decides the health of a Deployment that a Rollout rolls
// out from the Rollout's status about the Deployment's current template.
func TestRolloutTarget(t *testing.T) {
	dep := func(image string) *unstructured.Unstructured {
		d := &appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Annotations: map[string]string{GitRevisionAnnotation: "main@sha1:bbb"}},
			Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			}},
		}
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(d)
		if err != nil {
			t.Fatal(err)
		}
		return &unstructured.Unstructured{Object: m}
	}
	hashOf := func(u *unstructured.Unstructured) string {
		d := &appsv1.Deployment{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, d); err != nil {
			t.Fatal(err)
		}
		return podtemplate.Hash(&d.Spec.Template)
	}
	good, bad := dep("web:1"), dep("web:2")
	goodHash, badHash := hashOf(good), hashOf(bad)
	rollout := func(status string) *unstructured.Unstructured {
		return obj(t, `{apiVersion: delivery.strata.dev/v1alpha1, kind: Rollout, metadata: {namespace: shop, name: web, generation: 1}, status: `+status+`}`)
	}
	ready := `{type: Ready, status: "True", reason: RolloutHealthy}`
	cases := map[string]struct {
		dep, ro     *unstructured.Unstructured
		current     []string
		want        Result
		wantAborted bool
	}{
		"stable under the hash of the Deployment's own ReplicaSet": {
			dep:     good,
			current: []string{"k8shash"},
			ro:      rollout(`{observedGeneration: 1, message: "runs", stableRevision: {podTemplateHash: k8shash}, conditions: [` + ready + `]}`),
			want:    Result{Current, "Rollout shop/web: runs"},
		},
		"stable under the Git revision the Sync annotated": {
			dep:  good,
			ro:   rollout(`{observedGeneration: 1, message: "runs", stableRevision: {podTemplateHash: k8shash, gitRevision: "main@sha1:bbb"}, conditions: [` + ready + `]}`),
			want: Result{Current, "Rollout shop/web: runs"},
		},
		"stable and healthy": {
			dep:  good,
			ro:   rollout(`{observedGeneration: 1, message: "Deployment web runs revision x on 3 replicas", stableRevision: {podTemplateHash: ` + goodHash + `}, conditions: [` + ready + `]}`),
			want: Result{Current, "Rollout shop/web: Deployment web runs revision x on 3 replicas"},
		},
		"a template the Rollout has not seen yet is not healthy, though the Rollout is Ready": {
			dep:  bad,
			ro:   rollout(`{observedGeneration: 1, stableRevision: {podTemplateHash: ` + goodHash + `, gitRevision: "main@sha1:aaa"}, conditions: [` + ready + `]}`),
			want: Result{InProgress, "waiting for Rollout shop/web to take Deployment shop/web's template main@sha1:bbb (pod-template-hash " + badHash + ")"},
		},
		"canary in progress": {
			dep: bad,
			ro: rollout(`{observedGeneration: 1, message: "step 2 of 5: pause 10s", stableRevision: {podTemplateHash: ` + goodHash + `}, canaryRevision: {podTemplateHash: ` + badHash + `},
				conditions: [{type: Ready, status: "False", reason: RolloutPaused}, {type: Reconciling, status: "True", reason: RolloutPaused}]}`),
			want: Result{InProgress, "Rollout shop/web is rolling out revision " + badHash + ": step 2 of 5: pause 10s"},
		},
		"promoted, the Deployment still finishing": {
			dep: bad,
			ro: rollout(`{observedGeneration: 1, message: "revision promoted; Deployment web finishes the rollout", stableRevision: {podTemplateHash: ` + badHash + `},
				conditions: [{type: Ready, status: "False", reason: RolloutProgressing}, {type: Reconciling, status: "True", reason: RolloutProgressing}]}`),
			want: Result{InProgress, "Rollout shop/web: revision promoted; Deployment web finishes the rollout"},
		},
		"the current template aborted": {
			dep: bad,
			ro: rollout(`{observedGeneration: 1, stableRevision: {podTemplateHash: ` + goodHash + `, gitRevision: "main@sha1:aaa"}, canaryRevision: {podTemplateHash: ` + badHash + `, gitRevision: "main@sha1:bbb"},
				aborted: {revision: {podTemplateHash: ` + badHash + `, gitRevision: "main@sha1:bbb"}, stable: {podTemplateHash: ` + goodHash + `, gitRevision: "main@sha1:aaa"}, reason: AnalysisFailed, message: "metric error-rate failed"},
				conditions: [{type: Ready, status: "False", reason: RolloutAborted}, {type: Stalled, status: "True", reason: RolloutAborted}]}`),
			want:        Result{Failed, "Rollout shop/web aborted revision main@sha1:bbb (pod-template-hash " + badHash + ") (AnalysisFailed: metric error-rate failed); all traffic stays on stable revision main@sha1:aaa (pod-template-hash " + goodHash + ")"},
			wantAborted: true,
		},
		"an abort of the template before is not this template's": {
			dep: good,
			ro: rollout(`{observedGeneration: 1, stableRevision: {podTemplateHash: aaa}, canaryRevision: {podTemplateHash: ` + badHash + `},
				aborted: {revision: {podTemplateHash: ` + badHash + `}, stable: {podTemplateHash: aaa}, reason: AnalysisFailed},
				conditions: [{type: Ready, status: "False", reason: RolloutAborted}, {type: Stalled, status: "True", reason: RolloutAborted}]}`),
			want: Result{InProgress, "waiting for Rollout shop/web to take Deployment shop/web's template main@sha1:bbb (pod-template-hash " + goodHash + ")"},
		},
		"a Rollout stalled for another reason fails whatever the template": {
			dep: bad,
			ro: rollout(`{observedGeneration: 1, conditions: [{type: Ready, status: "False", reason: AccessDenied, message: "may not list replicasets"},
				{type: Stalled, status: "True", reason: AccessDenied, message: "may not list replicasets"}]}`),
			want: Result{Failed, "may not list replicasets"},
		},
		"a Rollout that has not reconciled its spec yet waits": {
			dep:  good,
			ro:   obj(t, `{apiVersion: delivery.strata.dev/v1alpha1, kind: Rollout, metadata: {namespace: shop, name: web, generation: 2}, status: {observedGeneration: 1, stableRevision: {podTemplateHash: `+goodHash+`}, conditions: [`+ready+`]}}`),
			want: Result{InProgress, "Rollout shop/web: Rollout generation is 2, but latest observed generation is 1"},
		},
	}
	for name, tc := range cases {
		got, aborted := RolloutTarget(tc.dep, tc.ro, tc.current...)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: (-want +got)\n%s", name, diff)
		}
		if aborted != tc.wantAborted {
			t.Errorf("%s: aborted %v, want %v", name, aborted, tc.wantAborted)
		}
	}
}

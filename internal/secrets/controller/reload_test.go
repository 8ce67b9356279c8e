package controller

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
)

func podSpec(use func(*corev1.PodSpec)) corev1.PodTemplateSpec {
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}
	use(&spec)
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}}, Spec: spec}
}

// A rotated value rolls the workloads that use the Secret (env, volume,
// envFrom) and opt in; the others are left alone.
func TestRotationReachesWorkloads(t *testing.T) {
	ns := namespace(t, nil)
	st := fakeStore(ns, "fake", secretsv1.FakeProviderData{Key: "db", Value: "pw-1"})
	es := externalSecret(ns, "db", "fake", item("password", "db", ""))
	create(t, st, es)
	ready(t, es, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)

	opt := map[string]string{secretsv1.ReloadAnnotation: "true"}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}
	env1 := podSpec(func(p *corev1.PodSpec) {
		p.Containers[0].Env = []corev1.EnvVar{{Name: "PW", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}}}
	})
	vol := podSpec(func(p *corev1.PodSpec) {
		p.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db"}}}}
	})
	envFrom := podSpec(func(p *corev1.PodSpec) {
		p.Containers[0].EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}}
	})
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web", Annotations: opt}, Spec: appsv1.DeploymentSpec{Selector: sel, Template: env1}}
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db", Annotations: opt}, Spec: appsv1.StatefulSetSpec{Selector: sel, Template: vol}}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent", Annotations: opt}, Spec: appsv1.DaemonSetSpec{Selector: sel, Template: envFrom}}
	quiet := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "quiet"}, Spec: appsv1.DeploymentSpec{Selector: sel, Template: env1}}
	create(t, dep, sts, ds, quiet)
	workloads := []client.Object{dep, sts, ds}

	hashes := func() []string {
		var out []string
		for _, w := range workloads {
			if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(w), w); err != nil {
				t.Fatal(err)
			}
			out = append(out, podTemplate(w).Annotations[secretsv1.SecretHashAnnotation])
		}
		return out
	}
	var first []string
	eventually(t, "a secret hash on every workload", func() (bool, string) {
		first = hashes()
		for _, h := range first {
			if h == "" {
				return false, "missing"
			}
		}
		return true, ""
	})

	setFake(t, st, secretsv1.FakeProviderData{Key: "db", Value: "pw-2"})
	ready(t, st, metav1.ConditionTrue, secretsv1.ReasonValid)
	refresh(t, es)
	eventually(t, "a new secret hash on every workload", func() (bool, string) {
		now := hashes()
		for i := range now {
			if now[i] == first[i] {
				return false, "unchanged on " + workloads[i].GetName()
			}
		}
		return true, ""
	})
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(quiet), quiet); err != nil {
		t.Fatal(err)
	}
	if h, ok := quiet.Spec.Template.Annotations[secretsv1.SecretHashAnnotation]; ok {
		t.Errorf("a workload without %s got a hash %q", secretsv1.ReloadAnnotation, h)
	}
	for _, w := range workloads {
		for _, v := range podTemplate(w).Annotations {
			if v == "pw-1" || v == "pw-2" {
				t.Errorf("a value appears on %s", w.GetName())
			}
		}
	}
}

package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/controller-runtime/pkg/client"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
)

// strata trace externalsecret/NAME draws store -> ExternalSecret -> Secret
// -> the workloads using it, and never prints the Secret's data.
func TestTraceExternalSecret(t *testing.T) {
	ctx := context.Background()
	c := env.Client
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "trace-es-"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	n := ns.Name
	ready := []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Valid", Message: "ok", LastTransitionTime: metav1.Now(), ObservedGeneration: 1}}
	st := &secretsv1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: n, Name: "fake"},
		Spec: secretsv1.SecretStoreSpec{Provider: secretsv1.SecretStoreProvider{Fake: &secretsv1.FakeProvider{}}}}
	es := &secretsv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: n, Name: "db"},
		Spec: secretsv1.ExternalSecretSpec{SecretStoreRef: secretsv1.SecretStoreRef{Name: "fake"}, Target: secretsv1.ExternalSecretTarget{Name: "db-creds"},
			Data: []secretsv1.ExternalSecretData{{SecretKey: "password", RemoteRef: secretsv1.ExternalSecretDataRemoteRef{Key: "db"}}}}}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: n, Name: "db-creds"}, Data: map[string][]byte{"password": []byte("topsecret-value")}}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}
	tpl := func(secret string) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "app", EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}}}}}}}
	}
	web := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: n, Name: "web", Annotations: map[string]string{secretsv1.ReloadAnnotation: "true"}},
		Spec: appsv1.DeploymentSpec{Selector: sel, Template: tpl("db-creds")}}
	other := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: n, Name: "other"}, Spec: appsv1.DeploymentSpec{Selector: sel, Template: tpl("unrelated")}}
	for _, o := range []client.Object{st, es, sec, web, other} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	st.Status.Conditions = ready
	es.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "SecretSynced", Message: "Secret holds 1 key(s)", LastTransitionTime: metav1.Now(), ObservedGeneration: 1}}
	es.Status.ObservedGeneration = 1
	st.Status.ObservedGeneration = 1
	for _, o := range []client.Object{st, es} {
		if err := c.Status().Update(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr := &tracer{mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), dyn: dyn}
	root, err := tr.trace(ctx, "externalsecret", n, "db")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var walk func(nd *traceNode, depth int)
	walk = func(nd *traceNode, depth int) {
		got = append(got, strings.Repeat(" ", depth)+nd.Kind+"/"+nd.Name+" "+nd.Ready)
		for _, ch := range nd.Children {
			walk(ch, depth+1)
		}
	}
	walk(root, 0)
	want := []string{"SecretStore/fake True", " ExternalSecret/db True", "  Secret/db-creds True", "   Deployment/web False"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tree:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, format := range []string{"", "wide", "json"} {
		var b bytes.Buffer
		if err := printTrace(&b, root, format); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(b.String(), "topsecret-value") || strings.Contains(b.String(), "dG9wc2VjcmV0") {
			t.Errorf("output %q shows the Secret's value", format)
		}
	}
}

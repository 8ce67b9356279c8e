package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/cluster"
	"github.com/strata-dev/strata/internal/testenv"
	"github.com/strata-dev/strata/internal/testenv/managedtest"
)

// TestCrashLoopStage runs the local cluster (kwok with Strata's stages) and a
// Deployment with two versions side by side: the pods of the version whose
// template carries the crash-loop annotation run but are never Ready (their
// container waits in CrashLoopBackOff) and their endpoints in the Service's
// EndpointSlice are not ready, while the other version's pods are Ready and
// serve. The same cluster gets the Gateway API CRDs from the tools folder,
// and an HTTPRoute with weighted backends is accepted.
func TestCrashLoopStage(t *testing.T) {
	cl, err := testenv.StartCluster()
	if err != nil {
		t.Fatalf("cannot start the local cluster: %v", err)
	}
	defer cl.Stop()
	ctx := context.Background()
	c := cl.Client
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "stages-"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	deploy := func(name string, annotations map[string]string) *appsv1.Deployment {
		labels := map[string]string{"app": "web", "version": name}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: name},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](2),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/web:" + name}}},
				},
			},
		}
		if err := c.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	deploy("good", nil)
	deploy("bad", map[string]string{cluster.CrashLoopAnnotation: "true"})
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}}}
	if err := c.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}

	managedtest.Eventually(t, 2*time.Minute, "two Ready good pods and two crash-looping bad pods", func() error {
		pods := &corev1.PodList{}
		if err := c.List(ctx, pods, client.InNamespace(ns.Name)); err != nil {
			return err
		}
		count := map[string]int{}
		for _, p := range pods.Items {
			v := p.Labels["version"]
			ready := podReady(&p)
			switch {
			case v == "good" && ready && p.Status.Phase == corev1.PodRunning:
				count["good"]++
			case v == "bad" && ready:
				return fmt.Errorf("bad pod %s is Ready", p.Name)
			case v == "bad" && p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && crashLooping(&p):
				count["bad"]++
			}
		}
		if count["good"] != 2 || count["bad"] != 2 {
			return fmt.Errorf("ready good pods %d, crash-looping bad pods %d", count["good"], count["bad"])
		}
		return nil
	})
	managedtest.Eventually(t, time.Minute, "the EndpointSlice serves the good pods only", func() error {
		slices := &discoveryv1.EndpointSliceList{}
		if err := c.List(ctx, slices, client.InNamespace(ns.Name), client.MatchingLabels{discoveryv1.LabelServiceName: "web"}); err != nil {
			return err
		}
		ready, notReady := 0, 0
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					ready++
				} else {
					notReady++
				}
			}
		}
		if ready != 2 || notReady != 2 {
			return fmt.Errorf("ready endpoints %d, not ready %d", ready, notReady)
		}
		return nil
	})
	// The bad pods stay so: the stage is not undone by kwok's pod-ready.
	bad := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: "bad"}, bad); err != nil {
		t.Fatal(err)
	}
	if bad.Status.ReadyReplicas != 0 || bad.Status.AvailableReplicas != 0 {
		t.Errorf("bad Deployment has %d ready, %d available replicas; want none", bad.Status.ReadyReplicas, bad.Status.AvailableReplicas)
	}

	if err := testenv.InstallGatewayAPI(cl.Config); err != nil {
		t.Fatal(err)
	}
	route := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1",
		"kind":       "HTTPRoute",
		"metadata":   map[string]any{"namespace": ns.Name, "name": "web"},
		"spec": map[string]any{
			"parentRefs": []any{map[string]any{"name": "gw"}},
			"rules": []any{map[string]any{"backendRefs": []any{
				map[string]any{"name": "web-stable", "port": int64(80), "weight": int64(80)},
				map[string]any{"name": "web-canary", "port": int64(80), "weight": int64(20)},
			}}},
		},
	}}
	if err := c.Create(ctx, route); err != nil {
		t.Fatalf("cannot create an HTTPRoute: %v", err)
	}
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(route.GroupVersionKind())
	if err := c.Get(ctx, client.ObjectKeyFromObject(route), got); err != nil {
		t.Fatal(err)
	}
	rules, _, _ := unstructured.NestedSlice(got.Object, "spec", "rules")
	refs, _, _ := unstructured.NestedSlice(rules[0].(map[string]any), "backendRefs")
	if w := refs[1].(map[string]any)["weight"]; fmt.Sprint(w) != "20" {
		t.Errorf("canary backend weight %v, want 20", w)
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func crashLooping(p *corev1.Pod) bool {
	if len(p.Status.ContainerStatuses) == 0 {
		return false
	}
	for _, s := range p.Status.ContainerStatuses {
		if s.Ready || s.State.Waiting == nil || s.State.Waiting.Reason != "CrashLoopBackOff" {
			return false
		}
	}
	return true
}

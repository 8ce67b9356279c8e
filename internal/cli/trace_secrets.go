package cli

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	secretscontroller "github.com/strata-dev/strata/internal/secrets/controller"
)

// isExternalSecret says whether trace should draw the secrets chain.
func isExternalSecret(gvk schema.GroupVersionKind) bool {
	return gvk.Group == secretsv1.GroupVersion.Group && gvk.Kind == "ExternalSecret"
}

// traceExternalSecret returns the chain store -> ExternalSecret -> Secret
// -> workloads that use it. Secret data is never read into the tree: the
// Secret node shows its status and the ExternalSecret's synced keys count.
func (t *tracer) traceExternalSecret(ctx context.Context, ns, name string) (*traceNode, error) {
	esGVK := secretsv1.GroupVersion.WithKind("ExternalSecret")
	esNode, err := t.node(ctx, esGVK, ns, name, 5)
	if err != nil {
		return nil, err
	}
	es, err := t.get(ctx, esGVK, ns, name)
	if err != nil {
		return nil, fmt.Errorf("cannot get ExternalSecret %s: %w", name, err)
	}
	kind, _, _ := unstructured.NestedString(es.Object, "spec", "secretStoreRef", "kind")
	if kind == "" {
		kind = secretsv1.SecretStoreKind
	}
	storeName, _, _ := unstructured.NestedString(es.Object, "spec", "secretStoreRef", "name")
	storeNS := ns
	if kind == secretsv1.ClusterSecretStoreKind {
		storeNS = ""
	}
	root, err := t.node(ctx, secretsv1.GroupVersion.WithKind(kind), storeNS, storeName, 5)
	if err != nil {
		return nil, err
	}
	root.Children = []*traceNode{esNode}
	target, _, _ := unstructured.NestedString(es.Object, "spec", "target", "name")
	if target == "" {
		target = name
	}
	if policy, _, _ := unstructured.NestedString(es.Object, "spec", "target", "creationPolicy"); policy == string(secretsv1.CreatePolicyNone) {
		return root, nil
	}
	secretNode, err := t.node(ctx, corev1.SchemeGroupVersion.WithKind("Secret"), ns, target, 5)
	if err != nil {
		return nil, err
	}
	esNode.Children = []*traceNode{secretNode}
	for _, kind := range []string{"Deployment", "StatefulSet", "DaemonSet"} {
		gvk := schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: kind}
		m, err := t.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			continue
		}
		// Every workload of the namespace may start using the Secret.
		t.read(m.Resource, ns, "")
		l, err := t.dyn.Resource(m.Resource).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		for i := range l.Items {
			u := &l.Items[i]
			tpl := &corev1.PodTemplateSpec{}
			raw, _, _ := unstructured.NestedMap(u.Object, "spec", "template")
			if runtime.DefaultUnstructuredConverter.FromUnstructured(raw, tpl) != nil {
				continue
			}
			for _, s := range secretscontroller.ReferencedSecrets(&tpl.Spec) {
				if s != target {
					continue
				}
				w, err := t.node(ctx, gvk, ns, u.GetName(), 5)
				if err != nil {
					return nil, err
				}
				if u.GetAnnotations()[secretsv1.ReloadAnnotation] == "true" {
					w.Reason = "Reloads"
					if w.Message == "" {
						w.Message = "rolls when the Secret rotates"
					}
				}
				secretNode.Children = append(secretNode.Children, w)
				break
			}
		}
	}
	return root, nil
}

// get reads one object as unstructured.
func (t *tracer) get(ctx context.Context, gvk schema.GroupVersionKind, ns, name string) (*unstructured.Unstructured, error) {
	m, err := t.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, err
	}
	return t.dyn.Resource(m.Resource).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
}

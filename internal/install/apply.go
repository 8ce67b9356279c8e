package install

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// ApplyObjects server-side applies objs in order with the "strata" field
// manager; CRDs are waited for (Established) before the objects after them.
func ApplyObjects(ctx context.Context, cfg *rest.Config, objs []*unstructured.Unstructured) error {
	return ApplyObjectsAs(ctx, cfg, objs, FieldManager)
}

// ApplyObjectsAs is ApplyObjects with another field manager (bootstrap
// applies as the Sync that will own the objects).
func ApplyObjectsAs(ctx context.Context, cfg *rest.Config, objs []*unstructured.Unstructured, fieldManager string) error {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return fmt.Errorf("cannot build discovery client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("cannot build client: %w", err)
	}
	cache := memory.NewMemCacheClient(dc)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(cache)
	var crds []*apiextensionsv1.CustomResourceDefinition
	flushCRDs := func() error {
		if len(crds) == 0 {
			return nil
		}
		if err := applyCRDs(ctx, cfg, crds, fieldManager); err != nil {
			return err
		}
		crds = nil
		mapper.Reset()
		return nil
	}
	force := true
	for _, u := range objs {
		if u.GetKind() == "CustomResourceDefinition" {
			c := &apiextensionsv1.CustomResourceDefinition{}
			if err := runtimeFromUnstructured(u, c); err != nil {
				return err
			}
			crds = append(crds, c)
			continue
		}
		if err := flushCRDs(); err != nil {
			return err
		}
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("cannot map %s: %w", gvk, err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = dyn.Resource(m.Resource).Namespace(u.GetNamespace())
		}
		data, err := json.Marshal(u.Object)
		if err != nil {
			return err
		}
		if _, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: fieldManager, Force: &force}); err != nil {
			return fmt.Errorf("cannot apply %s %s: %w", gvk.Kind, objName(u), err)
		}
	}
	return flushCRDs()
}

func objName(u *unstructured.Unstructured) string {
	if u.GetNamespace() != "" {
		return u.GetNamespace() + "/" + u.GetName()
	}
	return u.GetName()
}

func runtimeFromUnstructured(u *unstructured.Unstructured, into any) error {
	b, err := json.Marshal(u.Object)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, into); err != nil {
		return fmt.Errorf("cannot decode %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}

// waitTimeout bounds waits for CRDs.
var waitTimeout = 30 * time.Second

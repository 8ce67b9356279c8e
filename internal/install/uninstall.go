package install

import (
	"context"
	"fmt"
	"sort"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/strata-dev/strata/apis/crds"
)

// InUse lists what still depends on Strata in the cluster: Syncs, managed
// resources of every provider, and the composites and claims of every
// XRD, as "Kind namespace/name". Uninstall refuses while it is not empty.
func InUse(ctx context.Context, cfg *rest.Config) ([]string, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot build client: %w", err)
	}
	kinds, err := strataKinds(ctx, dyn, false)
	if err != nil {
		return nil, err
	}
	lists, err := listKinds(ctx, dyn, kinds)
	if err != nil {
		return nil, err
	}
	var out []string
	for i, l := range lists {
		for _, it := range l {
			out = append(out, kinds[i].kind+" "+objName(&it))
		}
	}
	sort.Strings(out)
	return out, nil
}

// listKinds lists the objects of every kind, all kinds at once: the API
// server answers the first list of a kind nobody watches with 429 and
// Retry-After: 1 while it fills its watch cache, and one kind after another
// that was a second per kind (about twenty). A kind without a CRD (an
// XRD's claim kind, say) has no objects.
func listKinds(ctx context.Context, dyn dynamic.Interface, kinds []kind) ([][]unstructured.Unstructured, error) {
	out := make([][]unstructured.Unstructured, len(kinds))
	g, ctx := errgroup.WithContext(ctx)
	for i, k := range kinds {
		g.Go(func() error {
			l, err := dyn.Resource(k.gvr).List(ctx, metav1.ListOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("cannot list %s: %w", k.gvr.GroupResource(), err)
			}
			out[i] = l.Items
			return nil
		})
	}
	return out, g.Wait()
}

// kind is one kind uninstall looks at.
type kind struct {
	gvr  schema.GroupVersionResource
	kind string
}

// strataKinds lists Strata's kinds (the CRDs of apis/crds) and the
// composite and claim kinds of every XRD in the cluster. Without all, the
// kinds that only configure Strata (XRDs, Compositions and the rest of
// apiextensions.strata.dev, ProviderConfigs, GitRepositories) are left out:
// what is left are the kinds whose objects "use" Strata.
func strataKinds(ctx context.Context, dyn dynamic.Interface, all bool) ([]kind, error) {
	var kinds []kind
	list, err := crds.All()
	if err != nil {
		return nil, err
	}
	for _, c := range list {
		g := c.Spec.Group
		if !all && (g == "apiextensions.strata.dev" || c.Spec.Names.Kind == "ProviderConfig" || c.Spec.Names.Kind == "GitRepository") {
			continue
		}
		for _, v := range c.Spec.Versions {
			if v.Storage {
				kinds = append(kinds, kind{schema.GroupVersionResource{Group: g, Version: v.Name, Resource: c.Spec.Names.Plural}, c.Spec.Names.Kind})
			}
		}
	}
	xrds, err := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.strata.dev", Version: "v1alpha1", Resource: "compositeresourcedefinitions"}).List(ctx, metav1.ListOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("cannot list XRDs: %w", err)
	}
	if xrds != nil {
		for _, x := range xrds.Items {
			group, _, _ := unstructured.NestedString(x.Object, "spec", "group")
			versions, _, _ := unstructured.NestedSlice(x.Object, "spec", "versions")
			version := ""
			for _, v := range versions {
				vm, _ := v.(map[string]any)
				if ref, _ := vm["referenceable"].(bool); ref || version == "" {
					version, _ = vm["name"].(string)
				}
			}
			for _, names := range []string{"names", "claimNames"} {
				plural, _, _ := unstructured.NestedString(x.Object, "spec", names, "plural")
				k, _, _ := unstructured.NestedString(x.Object, "spec", names, "kind")
				if plural != "" && version != "" {
					kinds = append(kinds, kind{schema.GroupVersionResource{Group: group, Version: version, Resource: plural}, k})
				}
			}
		}
	}
	return kinds, nil
}

// Delete removes the objects of an install (Objects(o)) in reverse order:
// the manager first, the CRDs (and with them every Strata object) last.
// Objects already gone are skipped. It returns how many it deleted.
func Delete(ctx context.Context, cfg *rest.Config, objs []*unstructured.Unstructured) (int, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return 0, fmt.Errorf("cannot build discovery client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return 0, fmt.Errorf("cannot build client: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	bg := metav1.DeletePropagationBackground
	n := 0
	for i := len(objs) - 1; i >= 0; i-- {
		u := objs[i]
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return n, fmt.Errorf("cannot map %s: %w", gvk, err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = dyn.Resource(m.Resource).Namespace(u.GetNamespace())
		}
		err = ri.Delete(ctx, u.GetName(), metav1.DeleteOptions{PropagationPolicy: &bg})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("cannot delete %s %s: %w", gvk.Kind, objName(u), err)
		}
		n++
	}
	return n, nil
}

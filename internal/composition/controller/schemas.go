package controller

import (
	"fmt"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/openapi3"
	"k8s.io/client-go/rest"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// apiSchemas serves the OpenAPI v3 schemas of the API server, cached per
// group version for a short while so new CRDs are seen.
type apiSchemas struct {
	dc   discovery.DiscoveryInterface
	root openapi3.Root
	mu   sync.Mutex
	docs map[schema.GroupVersion]cachedDoc
}

type cachedDoc struct {
	doc     *spec3.OpenAPI
	fetched time.Time
}

const schemaTTL = 30 * time.Second

func newAPISchemas(cfg *rest.Config) (*apiSchemas, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot build discovery client: %w", err)
	}
	return &apiSchemas{dc: dc, root: openapi3.NewRoot(dc.OpenAPIV3()), docs: map[schema.GroupVersion]cachedDoc{}}, nil
}

// Schema returns the schema of a kind, or nil when the API server does not
// publish one.
func (a *apiSchemas) Schema(gvk schema.GroupVersionKind) (*spec.Schema, func(string) *spec.Schema, error) {
	gv := gvk.GroupVersion()
	for attempt := 0; attempt < 2; attempt++ {
		a.mu.Lock()
		c, ok := a.docs[gv]
		a.mu.Unlock()
		if !ok || time.Since(c.fetched) > schemaTTL || attempt == 1 {
			doc, err := a.root.GVSpec(gv)
			if err != nil {
				if _, notFound := err.(*openapi3.GroupVersionNotFoundError); notFound {
					return nil, nil, nil
				}
				return nil, nil, err
			}
			c = cachedDoc{doc: doc, fetched: time.Now()}
			a.mu.Lock()
			a.docs[gv] = c
			a.mu.Unlock()
		}
		if s, resolve := findKind(c.doc, gvk); s != nil {
			return s, resolve, nil
		}
		if time.Since(c.fetched) < time.Second {
			break
		}
	}
	return nil, nil, nil
}

func findKind(doc *spec3.OpenAPI, gvk schema.GroupVersionKind) (*spec.Schema, func(string) *spec.Schema) {
	if doc == nil || doc.Components == nil {
		return nil, nil
	}
	resolve := func(ref string) *spec.Schema {
		return doc.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")]
	}
	for _, s := range doc.Components.Schemas {
		list, _ := s.Extensions["x-kubernetes-group-version-kind"].([]any)
		for _, e := range list {
			m, _ := e.(map[string]any)
			if m["group"] == gvk.Group && m["version"] == gvk.Version && m["kind"] == gvk.Kind {
				return s, resolve
			}
		}
	}
	return nil, nil
}

// Served reports whether the API server serves kind gvk, asking discovery
// each time so a CRD installed a moment ago is seen.
func (a *apiSchemas) Served(gvk schema.GroupVersionKind) (bool, error) {
	l, err := a.dc.ServerResourcesForGroupVersion(gvk.GroupVersion().String())
	if err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("cannot discover the kinds of %s: %w", gvk.GroupVersion(), err)
	}
	for _, r := range l.APIResources {
		if r.Kind == gvk.Kind && !strings.Contains(r.Name, "/") {
			return true, nil
		}
	}
	return false, nil
}

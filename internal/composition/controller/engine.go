package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/strata-dev/strata/apis/apiextensions/v1alpha1"
	"github.com/strata-dev/strata/internal/composition/render"
	"github.com/strata-dev/strata/internal/composition/xrd"
	"github.com/strata-dev/strata/internal/kubeclient"
)

// Engine starts a composite and a claim controller for each established
// XRD and caches compiled Composition revisions.
type Engine struct {
	mgr           ctrl.Manager
	client        client.Client
	cache         cache.Cache
	composedCache cache.Cache
	kindsMu       sync.RWMutex
	ownKinds      map[schema.GroupVersionKind]bool
	indexed       map[schema.GroupVersionKind]bool
	recorder      events.EventRecorder
	pollInterval  time.Duration
	workers       int

	mu      sync.Mutex
	started map[string]bool
	plans   map[types.UID]*render.Plan
}

// Setup registers the XRD and Composition controllers; they start the
// composite and claim controllers of each XRD as it becomes established.
// limit rate-limits the engine's API client; its zero fields take
// DefaultClientLimit.
func Setup(mgr ctrl.Manager, pollInterval time.Duration, workers int, limit kubeclient.Limit) error {
	if err := apiextensionsv1.AddToScheme(mgr.GetScheme()); err != nil {
		return fmt.Errorf("cannot register apiextensions types: %w", err)
	}
	if pollInterval <= 0 {
		pollInterval = time.Minute
	}
	if workers <= 0 {
		workers = 10
	}
	// The engine keeps its own caches, without managedFields (most of an
	// object's size): one of composites and claims, and one of composed
	// resources that holds only objects labelled strata.dev/composite, so
	// the ConfigMaps, Secrets... of everyone else are not cached.
	xrCache, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
		DefaultTransform: cache.TransformStripManagedFields(),
	})
	if err != nil {
		return fmt.Errorf("cannot create composition cache: %w", err)
	}
	composed, err := labels.NewRequirement(render.LabelComposite, selection.Exists, nil)
	if err != nil {
		return err
	}
	composedCache, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
		DefaultTransform:     cache.TransformStripManagedFields(),
		DefaultLabelSelector: labels.NewSelector().Add(*composed),
	})
	if err != nil {
		return fmt.Errorf("cannot create composition cache: %w", err)
	}
	for _, ca := range []cache.Cache{xrCache, composedCache} {
		if err := mgr.Add(ca); err != nil {
			return fmt.Errorf("cannot add composition cache: %w", err)
		}
	}
	e := &Engine{
		mgr: mgr, cache: xrCache, composedCache: composedCache, ownKinds: map[schema.GroupVersionKind]bool{}, indexed: map[schema.GroupVersionKind]bool{}, recorder: mgr.GetEventRecorder("strata-composition"),
		pollInterval: pollInterval, workers: workers,
		started: map[string]bool{}, plans: map[types.UID]*render.Plan{},
	}
	// Typed and unstructured objects are read from the engine's own caches.
	c, _, err := kubeclient.New(mgr, limit.Or(DefaultClientLimit),
		&client.CacheOptions{Reader: splitReader{e: e, typed: mgr.GetCache()}, Unstructured: true})
	if err != nil {
		return fmt.Errorf("cannot build composition client: %w", err)
	}
	e.client = c
	xr := &xrd.Reconciler{Client: c, Recorder: e.recorder, Starter: e}
	if err := xr.SetupWithManager(mgr, 2); err != nil {
		return fmt.Errorf("cannot set up XRD controller: %w", err)
	}
	schemas, err := newAPISchemas(mgr.GetConfig())
	if err != nil {
		return err
	}
	cr := &CompositionReconciler{Client: c, Recorder: e.recorder, Schemas: schemas}
	if err := cr.SetupWithManager(mgr, 2); err != nil {
		return fmt.Errorf("cannot set up Composition controller: %w", err)
	}
	return nil
}

// DefaultClientLimit rate-limits the engine's writes to the API server
// unless --kube-api-qps/--kube-api-burst say otherwise. A claim costs about
// ten requests, so the client-go default (5 QPS) would make a burst of
// claims take minutes.
var DefaultClientLimit = kubeclient.Limit{QPS: 100, Burst: 200}

// Start starts the composite and claim controllers of an XRD (once).
func (e *Engine) Start(_ context.Context, x *v1alpha1.CompositeResourceDefinition) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	v := x.ReferenceableVersion()
	xrGVK := schema.GroupVersionKind{Group: x.Spec.Group, Version: v.Name, Kind: x.Spec.Names.Kind}
	e.kindsMu.Lock()
	e.ownKinds[xrGVK] = true
	if x.Spec.ClaimNames != nil {
		e.ownKinds[xrGVK.GroupVersion().WithKind(x.Spec.ClaimNames.Kind)] = true
	}
	e.kindsMu.Unlock()
	key := "xr/" + xrGVK.String()
	if !e.started[key] {
		if err := e.startComposite(x.Name, xrGVK); err != nil {
			return err
		}
		e.started[key] = true
	}
	if x.Spec.ClaimNames == nil {
		return nil
	}
	claimGVK := schema.GroupVersionKind{Group: x.Spec.Group, Version: v.Name, Kind: x.Spec.ClaimNames.Kind}
	key = "claim/" + claimGVK.String()
	if !e.started[key] {
		if err := e.startClaim(x.Name, claimGVK, xrGVK); err != nil {
			return err
		}
		e.started[key] = true
	}
	return nil
}

func (e *Engine) startComposite(xrdName string, gvk schema.GroupVersionKind) error {
	r := &compositeReconciler{
		client: e.client, recorder: e.recorder, gvk: gvk, xrdName: xrdName, engine: e,
		watched: map[schema.GroupVersionKind]bool{},
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	skip := true
	c, err := ctrl.NewControllerManagedBy(e.mgr).
		Named("composite-"+gvk.Kind+"."+gvk.Group).
		WatchesRawSource(source.Kind[client.Object](e.cache, u, &handler.EnqueueRequestForObject{})).
		Watches(&v1alpha1.Composition{}, handler.EnqueueRequestsFromMapFunc(r.mapCompositionToXRs)).
		WithOptions(controller.Options{MaxConcurrentReconciles: e.workers, SkipNameValidation: &skip}).
		Build(r)
	if err != nil {
		return fmt.Errorf("cannot start controller for %s: %w", gvk.Kind, err)
	}
	r.ctrl = c
	return nil
}

func (e *Engine) startClaim(xrdName string, gvk, xrGVK schema.GroupVersionKind) error {
	r := &claimReconciler{client: e.client, recorder: e.recorder, gvk: gvk, xrGVK: xrGVK, xrdName: xrdName}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	xr := &unstructured.Unstructured{}
	xr.SetGroupVersionKind(xrGVK)
	skip := true
	_, err := ctrl.NewControllerManagedBy(e.mgr).
		Named("claim-" + gvk.Kind + "." + gvk.Group).
		WatchesRawSource(source.Kind[client.Object](e.cache, u, &handler.EnqueueRequestForObject{})).
		WatchesRawSource(source.Kind[client.Object](e.cache, xr, handler.EnqueueRequestsFromMapFunc(mapXRToClaim))).
		WithOptions(controller.Options{MaxConcurrentReconciles: e.workers, SkipNameValidation: &skip}).
		Build(r)
	if err != nil {
		return fmt.Errorf("cannot start controller for %s: %w", gvk.Kind, err)
	}
	return nil
}

// plan compiles a revision once; revisions are immutable.
func (e *Engine) plan(rev *v1alpha1.CompositionRevision) (*render.Plan, error) {
	e.mu.Lock()
	p, ok := e.plans[rev.UID]
	e.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := render.NewPlan(&rev.Spec.CompositionSpec, nil)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.plans[rev.UID] = p
	e.mu.Unlock()
	return p, nil
}

// splitReader reads unstructured objects (composites, claims, composed
// resources) from the engine's cache and typed objects (XRDs, Compositions)
// from the manager's, where the events of their controllers come from.
type splitReader struct {
	e     *Engine
	typed client.Reader
}

func (r splitReader) pick(o runtime.Object) client.Reader {
	var gvk schema.GroupVersionKind
	switch u := o.(type) {
	case *unstructured.Unstructured:
		gvk = u.GroupVersionKind()
	case *unstructured.UnstructuredList:
		gvk = u.GroupVersionKind()
		gvk.Kind = strings.TrimSuffix(gvk.Kind, "List")
	default:
		return r.typed
	}
	r.e.kindsMu.RLock()
	defer r.e.kindsMu.RUnlock()
	if r.e.ownKinds[gvk] {
		return r.e.cache
	}
	return r.e.composedCache
}

func (r splitReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	return r.pick(obj).Get(ctx, key, obj, opts...)
}

func (r splitReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return r.pick(list).List(ctx, list, opts...)
}

// indexComposite indexes composed resources by the name of their composite,
// so an XR finds its resources without scanning every cached object.
const indexComposite = "strata.dev/composite"

// ensureIndex adds the composite index for a kind once, before its informer
// starts.
func (e *Engine) ensureIndex(gvk schema.GroupVersionKind) error {
	e.kindsMu.Lock()
	defer e.kindsMu.Unlock()
	if e.indexed[gvk] {
		return nil
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	// Composites composed by other composites are read from the XR cache.
	ca := e.composedCache
	if e.ownKinds[gvk] {
		ca = e.cache
	}
	err := ca.IndexField(context.Background(), u, indexComposite, func(o client.Object) []string {
		if v := o.GetLabels()[render.LabelComposite]; v != "" {
			return []string{v}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot index %s: %w", gvk, err)
	}
	e.indexed[gvk] = true
	return nil
}

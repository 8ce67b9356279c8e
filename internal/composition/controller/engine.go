package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/strata-dev/strata/apis/apiextensions/v1alpha1"
	"github.com/strata-dev/strata/internal/composition/render"
	"github.com/strata-dev/strata/internal/composition/xrd"
	"github.com/strata-dev/strata/internal/kit/ownership"
	"github.com/strata-dev/strata/internal/kit/patch"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	"github.com/strata-dev/strata/internal/kit/ssa"
	"github.com/strata-dev/strata/internal/kubeclient"
)

// Engine starts a composite and a claim controller for each established
// XRD, stops them when the XRD goes or references another version, and
// caches compiled Composition revisions.
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
	claimGrace    time.Duration

	// ctx is the manager's; controllers run under contexts derived from it.
	ctx      context.Context
	ctxReady chan struct{}
	// runMu serialises Start and Stop; reconcilers never take it.
	runMu   sync.Mutex
	running map[string]*xrdControllers

	mu    sync.Mutex
	plans map[types.UID]*render.Plan

	// statusMemory is the status last written per XR and claim (their UIDs
	// differ), so a reconcile from a stale cache does not write it again.
	statusMemory *patch.Memory
	// handoffs carry an XR's readiness to its claim controller as the XR's
	// status write is sent (handoff.go).
	handoffs *handoffs
	// metaWrites are the engine's own writes of claims' and XRs' metadata
	// and spec, for the same reason.
	metaWrites *ownWrites

	releasedMu sync.Mutex
	// released are the XRs whose finalizer the engine removed, and when:
	// a reconcile from a cache that still shows the finalizer skips them
	// instead of removing it again.
	released map[types.UID]time.Time

	appliedMu sync.Mutex
	// applied is, per composed object, what an XR last applied (a hash)
	// and the resourceVersion the API server answered.
	applied map[string]appliedRec
}

type appliedRec struct {
	hash string
	rv   uint64
	at   time.Time
}

// appliedFor is how long an apply is remembered; the cache sees it much
// sooner.
const appliedFor = 10 * time.Minute

func appliedKey(o *unstructured.Unstructured) string {
	return o.GetAPIVersion() + "/" + o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
}

func appliedHash(o *unstructured.Unstructured) string {
	b, _ := json.Marshal(o.Object)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (e *Engine) recordApply(key, hash, rv string) {
	n, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		return
	}
	e.appliedMu.Lock()
	defer e.appliedMu.Unlock()
	now := time.Now()
	if len(e.applied) > 0 && len(e.applied)%1024 == 0 {
		for k, r := range e.applied {
			if now.Sub(r.at) > appliedFor {
				delete(e.applied, k)
			}
		}
	}
	e.applied[key] = appliedRec{hash: hash, rv: n, at: now}
}

// cacheLags says whether live, read from the cache, is older than the
// XR's last apply of the same desired object: the apply is done, the cache
// has not seen it. resourceVersions are etcd revisions here, so they are
// compared as numbers; one that is not a number trusts the cache.
func (e *Engine) cacheLags(key, hash string, live *unstructured.Unstructured) bool {
	n, err := strconv.ParseUint(live.GetResourceVersion(), 10, 64)
	if err != nil {
		return false
	}
	e.appliedMu.Lock()
	defer e.appliedMu.Unlock()
	r, ok := e.applied[key]
	return ok && r.hash == hash && n < r.rv
}

// ownWrites remembers, per claim or XR (by UID), the resourceVersion the API
// server answered to the engine's last write of its metadata or spec (the
// finalizer and the references it records once), so a reconcile that starts
// from a cache that has not seen that write yet does not send it again.
type ownWrites struct {
	mu sync.Mutex
	rv map[types.UID]appliedRec
}

func newOwnWrites() *ownWrites { return &ownWrites{rv: map[types.UID]appliedRec{}} }

// record remembers o as the engine just wrote it.
func (w *ownWrites) record(o metav1.Object) {
	n, err := strconv.ParseUint(o.GetResourceVersion(), 10, 64)
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if len(w.rv) > 0 && len(w.rv)%1024 == 0 {
		for k, r := range w.rv {
			if now.Sub(r.at) > appliedFor {
				delete(w.rv, k)
			}
		}
	}
	w.rv[o.GetUID()] = appliedRec{rv: n, at: now}
}

// lags says whether o, read from the cache, is older than the engine's last
// write of it: the write is done, the cache has not seen it. As in
// cacheLags, resourceVersions are compared as the etcd revisions they are;
// one that is not a number trusts the cache.
func (w *ownWrites) lags(o metav1.Object) bool {
	n, err := strconv.ParseUint(o.GetResourceVersion(), 10, 64)
	if err != nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	r, ok := w.rv[o.GetUID()]
	return ok && n < r.rv
}

func (w *ownWrites) forget(uid types.UID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.rv, uid)
}

// releasedFor is how long a released XR is remembered; its deletion reaches
// the cache much sooner.
const releasedFor = 2 * time.Minute

func (e *Engine) release(uid types.UID) {
	e.releasedMu.Lock()
	defer e.releasedMu.Unlock()
	now := time.Now()
	for u, t := range e.released {
		if now.Sub(t) > releasedFor {
			delete(e.released, u)
		}
	}
	e.released[uid] = now
}

func (e *Engine) wasReleased(uid types.UID) bool {
	e.releasedMu.Lock()
	defer e.releasedMu.Unlock()
	_, ok := e.released[uid]
	return ok
}

// xrdControllers are the controllers running for one XRD.
type xrdControllers struct {
	xr, claim schema.GroupVersionKind // claim is zero without claimNames
	cancel    context.CancelFunc
	done      chan struct{}
}

// Options configure the composition engine.
type Options struct {
	// PollInterval is how often an XR is reconciled without a change;
	// zero means a minute.
	PollInterval time.Duration
	// Workers is the worker count of each composite and claim controller;
	// zero means 10.
	Workers int
	// ClientLimit rate-limits the engine's API client; its zero fields
	// take DefaultClientLimit.
	ClientLimit kubeclient.Limit
	// WatchSelector, when set, restricts the claims, composites and
	// composed resources the engine sees to one shard (objects labelled
	// kubeclient.ShardLabel as it selects). A claim's XR and an XR's
	// composed resources carry their owner's shard label.
	WatchSelector labels.Selector
	// ClaimGrace is how long a new claim may go without a Ready condition
	// while its XR has not reported yet (normally milliseconds: the claim
	// then writes its status once, from the XR's); zero means 5 seconds.
	ClaimGrace time.Duration
}

// Setup registers the XRD and Composition controllers; they start the
// composite and claim controllers of each XRD as it becomes established.
// limit rate-limits the engine's API client; its zero fields take
// DefaultClientLimit.
func Setup(mgr ctrl.Manager, pollInterval time.Duration, workers int, limit kubeclient.Limit) error {
	_, err := SetupEngine(mgr, pollInterval, workers, limit)
	return err
}

// SetupEngine is Setup that also returns the engine, to inspect which
// controllers run.
func SetupEngine(mgr ctrl.Manager, pollInterval time.Duration, workers int, limit kubeclient.Limit) (*Engine, error) {
	return SetupEngineWithOptions(mgr, Options{PollInterval: pollInterval, Workers: workers, ClientLimit: limit})
}

// SetupEngineWithOptions is SetupEngine with every option.
func SetupEngineWithOptions(mgr ctrl.Manager, o Options) (*Engine, error) {
	pollInterval, workers, limit := o.PollInterval, o.Workers, o.ClientLimit
	if o.ClaimGrace <= 0 {
		o.ClaimGrace = 5 * time.Second
	}
	if err := apiextensionsv1.AddToScheme(mgr.GetScheme()); err != nil {
		return nil, fmt.Errorf("cannot register apiextensions types: %w", err)
	}
	if pollInterval <= 0 {
		pollInterval = time.Minute
	}
	if workers <= 0 {
		workers = 10
	}
	// The engine keeps its own caches, without managedFields (most of an
	// object's size) but the XRs' own applies (to skip applies that would
	// change nothing): one of composites and claims, and one of composed
	// resources that holds only objects labelled strata.dev/composite, so
	// the ConfigMaps, Secrets... of everyone else are not cached. A shard
	// sees only its own of both.
	composed, err := labels.NewRequirement(render.LabelComposite, selection.Exists, nil)
	if err != nil {
		return nil, err
	}
	composedSel := labels.NewSelector().Add(*composed)
	if o.WatchSelector != nil {
		reqs, _ := o.WatchSelector.Requirements()
		composedSel = composedSel.Add(reqs...)
	}
	xrCache, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
		DefaultTransform:     keepOwnApplies,
		DefaultLabelSelector: o.WatchSelector,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot create composition cache: %w", err)
	}
	composedCache, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
		DefaultTransform:     keepOwnApplies,
		DefaultLabelSelector: composedSel,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot create composition cache: %w", err)
	}
	for _, ca := range []cache.Cache{xrCache, composedCache} {
		if err := mgr.Add(ca); err != nil {
			return nil, fmt.Errorf("cannot add composition cache: %w", err)
		}
	}
	e := &Engine{
		mgr: mgr, cache: xrCache, composedCache: composedCache, ownKinds: map[schema.GroupVersionKind]bool{}, indexed: map[schema.GroupVersionKind]bool{}, recorder: mgr.GetEventRecorder("strata-composition"),
		pollInterval: pollInterval, workers: workers, claimGrace: o.ClaimGrace,
		ctxReady: make(chan struct{}), running: map[string]*xrdControllers{}, plans: map[types.UID]*render.Plan{},
		statusMemory: patch.NewMemory(), handoffs: newHandoffs(), metaWrites: newOwnWrites(), released: map[types.UID]time.Time{}, applied: map[string]appliedRec{},
	}
	// The per-XRD controllers are not the manager's (it cannot stop one):
	// they run under the manager's context, taken here.
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		e.ctx = ctx
		close(e.ctxReady)
		<-ctx.Done()
		return nil
	})); err != nil {
		return nil, fmt.Errorf("cannot add composition engine: %w", err)
	}
	// Typed and unstructured objects are read from the engine's own caches.
	c, _, err := kubeclient.New(mgr, limit.Or(DefaultClientLimit),
		&client.CacheOptions{Reader: splitReader{e: e, typed: mgr.GetCache()}, Unstructured: true})
	if err != nil {
		return nil, fmt.Errorf("cannot build composition client: %w", err)
	}
	e.client = c
	xr := &xrd.Reconciler{Client: c, Recorder: e.recorder, Starter: e}
	if err := xr.SetupWithManager(mgr, 2); err != nil {
		return nil, fmt.Errorf("cannot set up XRD controller: %w", err)
	}
	schemas, err := newAPISchemas(mgr.GetConfig())
	if err != nil {
		return nil, err
	}
	cr := &CompositionReconciler{Client: c, Recorder: e.recorder, Schemas: schemas, Kinds: schemas}
	if err := cr.SetupWithManager(mgr, 2); err != nil {
		return nil, fmt.Errorf("cannot set up Composition controller: %w", err)
	}
	return e, nil
}

// DefaultClientLimit is the engine's client-side rate limit unless
// --kube-api-qps/--kube-api-burst say otherwise: none, as a claim costs
// eight writes and the API server protects itself with Priority and
// Fairness; a client limit would only make a burst of claims wait.
var DefaultClientLimit = kubeclient.Unlimited

// Start starts the composite and claim controllers of an XRD's referenceable
// version (once). When the XRD references another version, or gains or loses
// its claim kind, the controllers of the old kinds are stopped first.
func (e *Engine) Start(ctx context.Context, x *v1alpha1.CompositeResourceDefinition) error {
	select {
	case <-e.ctxReady:
	case <-ctx.Done():
		return ctx.Err()
	}
	e.runMu.Lock()
	defer e.runMu.Unlock()
	v := x.ReferenceableVersion()
	xrGVK := schema.GroupVersionKind{Group: x.Spec.Group, Version: v.Name, Kind: x.Spec.Names.Kind}
	var claimGVK schema.GroupVersionKind
	if x.Spec.ClaimNames != nil {
		claimGVK = xrGVK.GroupVersion().WithKind(x.Spec.ClaimNames.Kind)
	}
	if cur := e.running[x.Name]; cur != nil {
		if cur.xr == xrGVK && cur.claim == claimGVK {
			return nil
		}
		if err := e.stopLocked(ctx, x.Name); err != nil {
			return err
		}
	}
	e.kindsMu.Lock()
	e.ownKinds[xrGVK] = true
	if !claimGVK.Empty() {
		e.ownKinds[claimGVK] = true
	}
	e.kindsMu.Unlock()
	ctrls := []controller.Controller{}
	c, err := e.newComposite(x.Name, xrGVK)
	if err != nil {
		return err
	}
	ctrls = append(ctrls, c)
	if !claimGVK.Empty() {
		c, err := e.newClaim(x.Name, claimGVK, xrGVK)
		if err != nil {
			return err
		}
		ctrls = append(ctrls, c)
	}
	runCtx, cancel := context.WithCancel(e.ctx)
	run := &xrdControllers{xr: xrGVK, claim: claimGVK, cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	for _, c := range ctrls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Start(runCtx); err != nil {
				ctrl.LoggerFrom(runCtx).Error(err, "composition controller stopped", "xrd", x.Name)
			}
		}()
	}
	go func() { wg.Wait(); close(run.done) }()
	e.running[x.Name] = run
	return nil
}

// Stop stops the controllers of the XRD named xrdName and removes the
// informers of its kinds, so nothing watches or reconciles them any more.
func (e *Engine) Stop(ctx context.Context, xrdName string) error {
	e.runMu.Lock()
	defer e.runMu.Unlock()
	return e.stopLocked(ctx, xrdName)
}

func (e *Engine) stopLocked(ctx context.Context, xrdName string) error {
	run := e.running[xrdName]
	if run == nil {
		return nil
	}
	run.cancel()
	select {
	case <-run.done:
	case <-ctx.Done():
		return fmt.Errorf("waiting for the controllers of %s to stop: %w", xrdName, ctx.Err())
	}
	delete(e.running, xrdName)
	for _, gvk := range []schema.GroupVersionKind{run.xr, run.claim} {
		if gvk.Empty() {
			continue
		}
		e.kindsMu.Lock()
		delete(e.ownKinds, gvk)
		delete(e.indexed, gvk)
		e.kindsMu.Unlock()
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		if err := e.cache.RemoveInformer(ctx, u); err != nil {
			return fmt.Errorf("cannot stop watching %s: %w", gvk, err)
		}
	}
	return nil
}

// Running lists the kinds the engine runs a controller for, sorted: the
// composite and claim kinds of every established XRD.
func (e *Engine) Running() []schema.GroupVersionKind {
	e.runMu.Lock()
	defer e.runMu.Unlock()
	var out []schema.GroupVersionKind
	for _, r := range e.running {
		out = append(out, r.xr)
		if !r.claim.Empty() {
			out = append(out, r.claim)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// newController builds a controller the engine starts and stops itself.
func (e *Engine) newController(name string, r reconcile.Reconciler) (controller.Controller, error) {
	skip := true
	opts := controller.Options{RateLimiter: kitreconcile.RateLimiter(), Reconciler: r, MaxConcurrentReconciles: e.workers, SkipNameValidation: &skip}
	opts.DefaultFromConfig(e.mgr.GetControllerOptions())
	if opts.Logger.GetSink() == nil {
		opts.Logger = e.mgr.GetLogger()
	}
	return controller.NewUnmanaged(name, opts)
}

func (e *Engine) newComposite(xrdName string, gvk schema.GroupVersionKind) (controller.Controller, error) {
	r := &compositeReconciler{
		client: e.client, recorder: e.recorder, gvk: gvk, xrdName: xrdName, engine: e,
		watched: map[schema.GroupVersionKind]bool{},
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	c, err := e.newController("composite-"+gvk.Kind+"."+gvk.Group, r)
	if err == nil {
		err = c.Watch(source.Kind[client.Object](e.cache, u, &handler.EnqueueRequestForObject{}))
	}
	if err == nil {
		// The handler stays on the manager's shared Composition informer
		// after the controller stops; its context ends then, and so does
		// its work.
		err = c.Watch(source.Kind[client.Object](e.mgr.GetCache(), &v1alpha1.Composition{}, handler.EnqueueRequestsFromMapFunc(
			func(ctx context.Context, o client.Object) []reconcile.Request {
				if ctx.Err() != nil {
					return nil
				}
				return r.mapCompositionToXRs(ctx, o)
			})))
	}
	if err != nil {
		return nil, fmt.Errorf("cannot start controller for %s: %w", gvk.Kind, err)
	}
	r.ctrl = c
	return c, nil
}

func (e *Engine) newClaim(xrdName string, gvk, xrGVK schema.GroupVersionKind) (controller.Controller, error) {
	r := &claimReconciler{client: e.client, recorder: e.recorder, gvk: gvk, xrGVK: xrGVK, xrdName: xrdName, memory: e.statusMemory, metaWrites: e.metaWrites, grace: e.claimGrace,
		reader: e.mgr.GetAPIReader(), handoffs: e.handoffs}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	xr := &unstructured.Unstructured{}
	xr.SetGroupVersionKind(xrGVK)
	c, err := e.newController("claim-"+gvk.Kind+"."+gvk.Group, r)
	if err == nil {
		err = c.Watch(source.Kind[client.Object](e.cache, u, &handler.EnqueueRequestForObject{}))
	}
	if err == nil {
		err = c.Watch(source.Kind[client.Object](e.cache, xr, e.handoffs.dropping(readinessFirst(handler.EnqueueRequestsFromMapFunc(mapXRToClaim), compositeReadinessChanged))))
	}
	if err == nil {
		err = c.Watch(source.Channel(e.handoffs.wake(xrGVK), enqueueFirst))
	}
	if err != nil {
		return nil, fmt.Errorf("cannot start controller for %s: %w", gvk.Kind, err)
	}
	return c, nil
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

// keepOwnApplies is a cache transform that drops every managedFields entry
// but the server-side applies of XRs (field managers "strata/<kind>/..."),
// which ownership.Unchanged reads.
func keepOwnApplies(in any) (any, error) {
	o, err := meta.Accessor(in)
	if err != nil {
		return in, nil
	}
	// The shared "strata" manager's entry stays too: the next apply moves
	// its fields to the XR's own manager (kit/ssa.Migrate).
	ownership.KeepManagedFields(o, func(manager string, op metav1.ManagedFieldsOperationType, _ string) bool {
		return op == metav1.ManagedFieldsOperationApply && (strings.HasPrefix(manager, "strata/") || manager == ssa.LegacyFieldManager)
	})
	return in, nil
}

package benchutil

import (
	"context"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Tracker keeps the latest version of every object of one kind (in one
// namespace, or all) from one list and a watch. Benchmarks wait on it
// instead of listing thousands of objects every 100 ms, which would cost
// the API server (and the benchmark) more than the engine being measured.
type Tracker struct {
	mu     sync.Mutex
	objs   map[string]*unstructured.Unstructured
	cancel context.CancelFunc
	done   chan struct{}
	// OnEvent, when set before the first event, sees every object as the
	// watch delivers it, with the time it arrived.
	onEvent func(u *unstructured.Unstructured, deleted bool, at time.Time)
}

// Track starts a Tracker of gvk in namespace ns ("" for all or a
// cluster-scoped kind); onEvent (may be nil) sees every change as it
// arrives. It is stopped at tb's cleanup.
func (u *Up) Track(tb testing.TB, gvk schema.GroupVersionKind, ns string, onEvent func(u *unstructured.Unstructured, deleted bool, at time.Time)) *Tracker {
	tb.Helper()
	wc := u.WatchClient(tb)
	ctx, cancel := context.WithCancel(context.Background())
	t := &Tracker{objs: map[string]*unstructured.Unstructured{}, cancel: cancel, done: make(chan struct{}), onEvent: onEvent}
	listGVK := gvk.GroupVersion().WithKind(gvk.Kind + "List")
	opts := []client.ListOption{}
	if ns != "" {
		opts = append(opts, client.InNamespace(ns))
	}
	relist := func() (string, error) {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(listGVK)
		if err := wc.List(ctx, l, opts...); err != nil {
			return "", err
		}
		now := time.Now()
		t.mu.Lock()
		t.objs = map[string]*unstructured.Unstructured{}
		for i := range l.Items {
			o := &l.Items[i]
			t.objs[key(o)] = o
			if t.onEvent != nil {
				t.onEvent(o, false, now)
			}
		}
		t.mu.Unlock()
		return l.GetResourceVersion(), nil
	}
	rv, err := relist()
	if err != nil {
		cancel()
		tb.Fatalf("cannot list %s: %v", gvk.Kind, err)
	}
	go func() {
		defer close(t.done)
		for ctx.Err() == nil {
			if rv == "" {
				if rv, err = relist(); err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
			}
			l := &unstructured.UnstructuredList{}
			l.SetGroupVersionKind(listGVK)
			w, err := wc.Watch(ctx, l, append(opts, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv}})...)
			if err != nil {
				rv = ""
				continue
			}
			for ev := range w.ResultChan() {
				if ev.Type == watch.Error {
					rv = "" // too old: list again
					break
				}
				o, ok := ev.Object.(*unstructured.Unstructured)
				if !ok {
					continue
				}
				rv = o.GetResourceVersion()
				if ev.Type == watch.Bookmark {
					continue
				}
				now := time.Now()
				t.mu.Lock()
				if ev.Type == watch.Deleted {
					delete(t.objs, key(o))
				} else {
					t.objs[key(o)] = o
				}
				if t.onEvent != nil {
					t.onEvent(o, ev.Type == watch.Deleted, now)
				}
				t.mu.Unlock()
			}
			w.Stop()
		}
	}()
	tb.Cleanup(t.Stop)
	return t
}

func key(o *unstructured.Unstructured) string { return o.GetNamespace() + "/" + o.GetName() }

// Count is how many tracked objects match (all when match is nil) and how
// many there are.
func (t *Tracker) Count(match func(*unstructured.Unstructured) bool) (matched, total int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, o := range t.objs {
		if match == nil || match(o) {
			matched++
		}
	}
	return matched, len(t.objs)
}

// Each calls fn for every tracked object.
func (t *Tracker) Each(fn func(*unstructured.Unstructured)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, o := range t.objs {
		fn(o)
	}
}

// Stop ends the watch.
func (t *Tracker) Stop() {
	t.cancel()
	<-t.done
}

// IsReady reports whether u has a Ready condition with status True.
func IsReady(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, cd := range conds {
		m, _ := cd.(map[string]any)
		if m["type"] == "Ready" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// FirstMatch records, per object name, when a Tracker's watch first
// delivered the object matching a condition (Ready, healthy): the time a
// user watching would have seen it.
type FirstMatch struct {
	match func(*unstructured.Unstructured) bool
	mu    sync.Mutex
	at    map[string]time.Time
}

// NewFirstMatch records first matches of match; pass its Observe to Track.
func NewFirstMatch(match func(*unstructured.Unstructured) bool) *FirstMatch {
	return &FirstMatch{match: match, at: map[string]time.Time{}}
}

// Observe is a Track onEvent.
func (f *FirstMatch) Observe(u *unstructured.Unstructured, deleted bool, at time.Time) {
	if deleted || !f.match(u) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, seen := f.at[u.GetName()]; !seen {
		f.at[u.GetName()] = at
	}
}

// Len is how many objects have matched.
func (f *FirstMatch) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.at)
}

// At is when the object named name first matched.
func (f *FirstMatch) At(name string) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.at[name]
	return t, ok
}

// Last is the latest first match: when the last object to match did.
func (f *FirstMatch) Last() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	var last time.Time
	for _, t := range f.at {
		if t.After(last) {
			last = t
		}
	}
	return last
}

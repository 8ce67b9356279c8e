package patch

import (
	"sync"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Memory remembers the status a controller last wrote for each object (by
// UID), so a reconcile that starts from a cache that has not yet seen that
// write does not send the same status again. Only the controller that owns
// an object's status should use it: a status someone else changed is put
// back only when the controller's own status changes. Safe for concurrent
// use; Forget an object when it is gone.
type Memory struct {
	mu      sync.Mutex
	written map[types.UID]written
}

// written is a status this controller wrote and the resourceVersion the API
// server gave the object for it.
type written struct {
	status          any
	resourceVersion string
}

// NewMemory returns an empty Memory.
func NewMemory() *Memory { return &Memory{written: map[types.UID]written{}} }

// Behind reports whether obj, as a cache holds it, is older than the last
// status this controller wrote for it: its resourceVersion is lower than
// the one that write got (resourceVersions compare as Kubernetes documents,
// k8s.io/apimachinery's resourceversion package; a version that does not
// compare is never behind). A controller whose next steps depend on what it
// wrote (a Rollout that has aborted must not scale its canary up again from
// the step before) ends such a reconcile at once: the watch event of its own
// write reconciles the object again from a cache that holds it.
func (m *Memory) Behind(obj client.Object) bool {
	if m == nil || obj.GetUID() == "" {
		return false
	}
	m.mu.Lock()
	last, ok := m.written[obj.GetUID()]
	m.mu.Unlock()
	if !ok || last.resourceVersion == "" {
		return false
	}
	c, err := resourceversion.CompareResourceVersion(obj.GetResourceVersion(), last.resourceVersion)
	return err == nil && c < 0
}

// WithMemory skips a write whose status m remembers as the last written for
// the object (but for the transition times of its conditions), and
// remembers each status written.
func WithMemory(m *Memory) Option { return func(o *options) { o.memory = m } }

// Forget drops what m remembers of the object with uid.
func (m *Memory) Forget(uid types.UID) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.written, uid)
}

func (m *Memory) wrote(obj client.Object, status any) bool {
	if m == nil || obj.GetUID() == "" {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	last, ok := m.written[obj.GetUID()]
	return ok && equality.Semantic.DeepEqual(withoutTransitionTimes(last.status), withoutTransitionTimes(status))
}

// withoutTransitionTimes is status without the lastTransitionTime of its
// conditions. A reconcile that starts from a cache that has not seen the
// controller's last write computes its conditions from an older status, so
// a condition that has not changed since that write gets a new transition
// time (one second later is enough); the status written holds the right
// one, and sending the later time would be a write that changes nothing
// else, and a wrong time.
func withoutTransitionTimes(status any) any {
	m, ok := status.(map[string]any)
	if !ok {
		return status
	}
	conds, ok := m["conditions"].([]any)
	if !ok {
		return status
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	stripped := make([]any, len(conds))
	for i, c := range conds {
		cm, ok := c.(map[string]any)
		if !ok {
			stripped[i] = c
			continue
		}
		cc := make(map[string]any, len(cm))
		for k, v := range cm {
			if k != "lastTransitionTime" {
				cc[k] = v
			}
		}
		stripped[i] = cc
	}
	out["conditions"] = stripped
	return out
}

func (m *Memory) remember(obj client.Object, status any) {
	if m == nil || obj.GetUID() == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.written[obj.GetUID()] = written{status: status, resourceVersion: obj.GetResourceVersion()}
}

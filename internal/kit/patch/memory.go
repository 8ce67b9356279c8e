package patch

import (
	"sync"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
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
	written map[types.UID]any
}

// NewMemory returns an empty Memory.
func NewMemory() *Memory { return &Memory{written: map[types.UID]any{}} }

// WithMemory skips a write whose status m remembers as the last written for
// the object, and remembers each status written.
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
	return ok && equality.Semantic.DeepEqual(last, status)
}

func (m *Memory) remember(obj client.Object, status any) {
	if m == nil || obj.GetUID() == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.written[obj.GetUID()] = status
}

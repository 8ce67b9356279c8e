package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
)

// clearScreen moves the cursor home and clears the terminal, so the next
// tree is drawn in place.
const clearScreen = "\033[H\033[2J"

// watchSyncTimeout bounds the wait for a new watch's first list; a kind
// that cannot be listed (no rights) is then left unwatched, with a warning.
const watchSyncTimeout = 30 * time.Second

// isTerminal says whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// watchTrace prints the tree of kind/name, then watches every object the
// trace read (an informer per object, filtered by name; per collection for
// the lists an ExternalSecret trace reads) and traces again on every
// change, printing the tree when it differs from the last one printed. On a
// terminal (tty) each tree replaces the last on the screen; otherwise trees
// follow one another, separated. It returns nil when ctx ends.
func watchTrace(ctx context.Context, t *tracer, kind, ns, name string, out, errOut io.Writer, format string, tty bool) error {
	changed := make(chan struct{}, 1)
	w := &traceWatches{dyn: t.dyn, errOut: errOut, running: map[watchTarget]context.CancelFunc{}, notify: func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}}
	defer w.stopAll()
	var last []byte
	for {
		root, err := t.trace(ctx, kind, ns, name)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if !apierrors.IsNotFound(err) {
				return err
			}
			// The root is gone (or not there yet): say so, and keep
			// watching its name.
			root = &traceNode{Kind: kind, Name: name, Namespace: ns, Synced: "-", Ready: "False", Message: "not found"}
		}
		if w.ensure(ctx, t.targets) {
			// New watches cover what the trace read only from now on:
			// trace again, so no change in between is missed.
			select {
			case <-changed:
			default:
			}
			continue
		}
		var buf bytes.Buffer
		if err := printTrace(&buf, root, format); err != nil {
			return err
		}
		if !bytes.Equal(buf.Bytes(), last) {
			switch {
			case tty:
				fmt.Fprint(out, clearScreen)
			case last == nil:
			case format == "yaml":
				fmt.Fprintln(out, "---")
			case format != "json":
				fmt.Fprintln(out)
			}
			if _, err := out.Write(buf.Bytes()); err != nil {
				return err
			}
			last = buf.Bytes()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// traceWatches runs one informer per watch target.
type traceWatches struct {
	dyn     dynamic.Interface
	errOut  io.Writer
	notify  func()
	running map[watchTarget]context.CancelFunc
}

// ensure starts informers for the targets not yet watched and stops those
// of objects no longer in the tree. It returns whether it started any,
// after their first list.
func (w *traceWatches) ensure(ctx context.Context, targets map[watchTarget]bool) bool {
	for tg, stop := range w.running {
		if !targets[tg] {
			if stop != nil {
				stop()
			}
			delete(w.running, tg)
		}
	}
	var started []cache.SharedIndexInformer
	var startedTargets []watchTarget
	for tg := range targets {
		if _, ok := w.running[tg]; ok {
			continue
		}
		ictx, cancel := context.WithCancel(ctx)
		inf := w.informer(tg)
		go inf.RunWithContext(ictx)
		w.running[tg] = cancel
		started = append(started, inf)
		startedTargets = append(startedTargets, tg)
	}
	for i, inf := range started {
		sctx, cancel := context.WithTimeout(ctx, watchSyncTimeout)
		ok := cache.WaitForCacheSync(sctx.Done(), inf.HasSynced)
		cancel()
		if !ok && ctx.Err() == nil {
			tg := startedTargets[i]
			w.running[tg]()
			w.running[tg] = nil // not retried
			fmt.Fprintf(w.errOut, "warning: cannot watch %s %s: changes to it are not shown\n", tg.gvr.GroupResource(), tg.display())
		}
	}
	return len(started) > 0
}

func (tg watchTarget) display() string {
	n := tg.name
	if n == "" {
		n = "*"
	}
	if tg.namespace != "" {
		return tg.namespace + "/" + n
	}
	return n
}

func (w *traceWatches) informer(tg watchTarget) cache.SharedIndexInformer {
	var ri dynamic.ResourceInterface = w.dyn.Resource(tg.gvr)
	if tg.namespace != "" {
		ri = w.dyn.Resource(tg.gvr).Namespace(tg.namespace)
	}
	tweak := func(o *metav1.ListOptions) {
		if tg.name != "" {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", tg.name).String()
		}
	}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			tweak(&o)
			return ri.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			tweak(&o)
			return ri.Watch(ctx, o)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &unstructured.Unstructured{}, 0, cache.Indexers{})
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(_ any, initial bool) {
			if !initial {
				w.notify()
			}
		},
		UpdateFunc: func(_, _ any) { w.notify() },
		DeleteFunc: func(any) { w.notify() },
	})
	return inf
}

func (w *traceWatches) stopAll() {
	for _, stop := range w.running {
		if stop != nil {
			stop()
		}
	}
}

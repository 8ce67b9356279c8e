package install

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
)

// IsStrataFinalizer says whether a finalizer is Strata's: its domain is
// strata.dev or one below it (gitops.strata.dev/finalizer,
// apiextensions.strata.dev/composite). Uninstall removes only these.
func IsStrataFinalizer(f string) bool {
	domain, _, ok := strings.Cut(f, "/")
	return ok && (domain == "strata.dev" || strings.HasSuffix(domain, ".strata.dev"))
}

// FinalizerOrphans says, for each finalizer Strata puts on objects, what is
// left behind when it is removed without the manager's cleanup. A test in
// internal/cli checks that every finalizer the controllers use is here.
var FinalizerOrphans = map[string]string{
	"managed.strata.dev/finalizer":       "its external resource is not deleted: it stays in the external system",
	"managed.strata.dev/in-use":          "nothing (the finalizer only marks the ProviderConfig as in use)",
	"gitops.strata.dev/finalizer":        "", // by kind, see Held.Orphans
	"apiextensions.strata.dev/composite": "its composed resources are not deleted in order: Kubernetes garbage collection removes those it owns, others stay",
	"apiextensions.strata.dev/claim":     "its composite resource is not deleted first: garbage collection removes it, its composed resources as above",
	"apiextensions.strata.dev/xrd":       "the CRDs it defines are not removed by Strata: garbage collection removes them, with their objects",
	"secrets.strata.dev/pushsecret":      "the secrets it pushed stay in the external store",
}

// Held is an object that carries Strata's finalizers.
type Held struct {
	GVR        schema.GroupVersionResource
	Kind       string
	Namespace  string
	Name       string
	UID        types.UID
	Finalizers []string
	// Others are finalizers that are not Strata's: uninstall leaves them.
	Others []string
	// Deleting says whether the object is being deleted already.
	Deleting bool
}

func (h Held) String() string {
	if h.Namespace == "" {
		return h.Kind + " " + h.Name
	}
	return h.Kind + " " + h.Namespace + "/" + h.Name
}

// Orphans says what removing h's Strata finalizers leaves behind, one
// phrase per finalizer.
func (h Held) Orphans() []string {
	var out []string
	for _, f := range h.Finalizers {
		what := FinalizerOrphans[f]
		switch {
		case f == "gitops.strata.dev/finalizer" && h.Kind == "Sync":
			what = "the objects it applied are not pruned: they stay in the cluster"
		case f == "gitops.strata.dev/finalizer":
			what = "nothing (its cached artifact goes with the manager)"
		case what == "":
			what = "the manager's cleanup for it does not run"
		}
		out = append(out, f+": "+what)
	}
	return out
}

// Finalized lists the objects of Strata's kinds and of every XRD's kinds
// that carry Strata's finalizers, sorted.
func Finalized(ctx context.Context, cfg *rest.Config) ([]Held, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot build client: %w", err)
	}
	kinds, err := strataKinds(ctx, dyn, true)
	if err != nil {
		return nil, err
	}
	lists, err := listKinds(ctx, dyn, kinds)
	if err != nil {
		return nil, err
	}
	var out []Held
	for i, l := range lists {
		for j := range l {
			if h, ok := heldBy(kinds[i], &l[j]); ok {
				out = append(out, h)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

func heldBy(k kind, u *unstructured.Unstructured) (Held, bool) {
	h := Held{GVR: k.gvr, Kind: k.kind, Namespace: u.GetNamespace(), Name: u.GetName(), UID: u.GetUID(), Deleting: u.GetDeletionTimestamp() != nil}
	for _, f := range u.GetFinalizers() {
		if IsStrataFinalizer(f) {
			h.Finalizers = append(h.Finalizers, f)
		} else {
			h.Others = append(h.Others, f)
		}
	}
	return h, len(h.Finalizers) > 0
}

// ClearFinalizers removes Strata's finalizers (only Strata's) from the
// objects Finalized lists now — with deletingOnly, only from those being
// deleted already — and returns what it changed. Each object is read and
// written with its resourceVersion (optimistic locking: a concurrent write
// makes it read again), so another writer's finalizers are never lost.
// Call it when the manager has stopped, or it may add them back.
func ClearFinalizers(ctx context.Context, cfg *rest.Config, deletingOnly bool) ([]Held, error) {
	held, err := Finalized(ctx, cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot build client: %w", err)
	}
	var out []Held
	for _, h := range held {
		if deletingOnly && !h.Deleting {
			continue
		}
		var ri dynamic.ResourceInterface = dyn.Resource(h.GVR)
		if h.Namespace != "" {
			ri = dyn.Resource(h.GVR).Namespace(h.Namespace)
		}
		changed := false
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			u, err := ri.Get(ctx, h.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if u.GetUID() != h.UID {
				return nil // another object of that name now
			}
			var keep []string
			for _, f := range u.GetFinalizers() {
				if !IsStrataFinalizer(f) {
					keep = append(keep, f)
				}
			}
			if len(keep) == len(u.GetFinalizers()) {
				return nil
			}
			u.SetFinalizers(keep)
			if _, err := ri.Update(ctx, u, metav1.UpdateOptions{}); err != nil {
				return err
			}
			changed = true
			return nil
		})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("cannot remove Strata's finalizers from %s: %w", h, err)
		}
		if changed {
			out = append(out, h)
		}
	}
	return out, nil
}

// WaitManagerGone waits until no pod of the manager Deployment in ns is
// left (a terminating manager could add finalizers back), up to timeout.
func WaitManagerGone(ctx context.Context, cfg *rest.Config, ns string, timeout time.Duration) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("cannot build client: %w", err)
	}
	sel := metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: managerSelector})
	var left int
	err = wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return false, fmt.Errorf("cannot list the manager's pods: %w", err)
		}
		left = len(pods.Items)
		return left == 0, nil
	})
	if err != nil && left > 0 {
		return fmt.Errorf("%d manager pods in %s are still running after %s; run uninstall again when they are gone", left, ns, timeout)
	}
	return err
}

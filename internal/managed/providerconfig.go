package managed

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/kit/eventmsg"
	"github.com/strata-dev/strata/internal/kit/patch"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	managedv1 "github.com/strata-dev/strata/internal/managed/apis/v1alpha1"
)

// InUseFinalizer keeps a ProviderConfig while managed resources use it.
const InUseFinalizer = "managed.strata.dev/in-use"

// indexProviderConfigRef indexes managed resources by ProviderConfig name.
const indexProviderConfigRef = "spec.providerConfigRef.name"

func indexProviderConfig(ctx context.Context, mgr ctrl.Manager, obj Managed) error {
	err := mgr.GetFieldIndexer().IndexField(ctx, obj, indexProviderConfigRef, func(o client.Object) []string {
		return []string{ProviderConfigName(o.(Managed))}
	})
	if err != nil {
		return fmt.Errorf("cannot index %T by ProviderConfig: %w", obj, err)
	}
	return nil
}

// ProviderConfig is a provider's configuration kind.
type ProviderConfig interface {
	client.Object
	conditions.Setter
	// ProviderConfigStatus returns the shared status fields.
	ProviderConfigStatus() *managedv1.ProviderConfigStatus
	// ProviderConfigUsage returns the shared spec fields that say who may
	// use it.
	ProviderConfigUsage() *managedv1.ProviderConfigUsage
}

// User is a managed kind that may use a ProviderConfig.
type User struct {
	// New returns an empty object of the kind.
	New func() Managed
	// NewList returns an empty list of the kind.
	NewList func() client.ObjectList
}

// ProviderConfigKind describes a provider's ProviderConfig kind and the
// managed kinds that use it.
type ProviderConfigKind struct {
	New   func() ProviderConfig
	Users []User
	// Check, when set, connects and logs in to the external system with the
	// ProviderConfig's credentials. Its error names the server and the
	// cause, never a secret: it becomes the Ready=False message (reason
	// ConnectionFailed). Without Check a ProviderConfig is Ready as soon as
	// it is seen.
	Check func(ctx context.Context, pc ProviderConfig) error
}

// Intervals of the ProviderConfig connection check: a failed check is
// retried soon, so fixed credentials show within seconds; a passed one is
// repeated now and then, so credentials revoked on the server show too.
const (
	checkRetry   = 10 * time.Second
	checkRecheck = 5 * time.Minute
)

type pcReconciler struct {
	client   client.Client
	kind     ProviderConfigKind
	recorder events.EventRecorder
}

// SetupProviderConfig registers the controller that counts a ProviderConfig's
// users into status.users and keeps it from being deleted while it has any.
// Call it after Setup for every user kind (it needs their index).
func SetupProviderConfig(mgr ctrl.Manager, k ProviderConfigKind) error {
	obj := k.New()
	gvk, err := apiutil.GVKForObject(obj, mgr.GetScheme())
	if err != nil {
		return fmt.Errorf("cannot find the kind of %T: %w", obj, err)
	}
	r := &pcReconciler{client: mgr.GetClient(), kind: k, recorder: mgr.GetEventRecorder("strata-" + strings.ToLower(gvk.Kind) + "." + gvk.Group)}
	b := ctrl.NewControllerManagedBy(mgr).Named(strings.ToLower(gvk.Kind + "." + gvk.Group)).For(obj).
		WithOptions(controller.Options{RateLimiter: kitreconcile.RateLimiter()})
	for _, u := range k.Users {
		b = b.Watches(u.New(), handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: ProviderConfigName(o.(Managed))}}}
		}))
	}
	return b.Complete(r)
}

func (r *pcReconciler) Reconcile(ctx context.Context, req reconcile.Request) (res ctrl.Result, retErr error) {
	pc := r.kind.New()
	if err := r.client.Get(ctx, req.NamespacedName, pc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	// The status (the count of users, and whether deletion waits for them)
	// is written with the resourceVersion of the ProviderConfig as read, so
	// a reconcile that started from a stale cache cannot overwrite a newer
	// count: it gets a Conflict and runs again from a fresh read.
	status := patch.NewHelper(r.client, pc)
	orig := status.Base().(ProviderConfig)
	users, err := r.users(ctx, pc.GetName())
	if err != nil {
		return ctrl.Result{}, err
	}
	conditions.EnsureInitialized(pc)
	pc.ProviderConfigStatus().Users = int64(len(users))
	deleting := !pc.GetDeletionTimestamp().IsZero()
	switch {
	case len(users) > 0 && !controllerutil.ContainsFinalizer(pc, InUseFinalizer) && !deleting:
		controllerutil.AddFinalizer(pc, InUseFinalizer)
	case len(users) == 0 && controllerutil.ContainsFinalizer(pc, InUseFinalizer):
		controllerutil.RemoveFinalizer(pc, InUseFinalizer)
	}
	if !equalStrings(pc.GetFinalizers(), orig.GetFinalizers()) {
		cp := pc.DeepCopyObject().(ProviderConfig)
		if err := r.client.Update(ctx, cp); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(fmt.Errorf("cannot update finalizers of %q: %w", pc.GetName(), err))
		}
		if deleting && len(users) == 0 {
			return ctrl.Result{}, nil
		}
		pc.SetResourceVersion(cp.GetResourceVersion())
		status.Updated(cp)
	}
	switch {
	case deleting && len(users) > 0:
		msg := fmt.Sprintf("cannot delete ProviderConfig %q: in use by %d resource(s): %s", pc.GetName(), len(users), summarize(users))
		if c := conditions.Get(pc, conditions.Ready); c == nil || c.Message != msg {
			r.recorder.Eventf(pc, nil, corev1.EventTypeWarning, ReasonInUse, "Delete", "%s", msg)
		}
		conditions.MarkProgressing(pc, ReasonInUse, msg)
	case r.kind.Check != nil && !deleting:
		res.RequeueAfter = kitreconcile.Jitter(checkRecheck)
		if err := r.kind.Check(ctx, pc); err != nil {
			msg := eventmsg.Truncate(err.Error())
			if c := conditions.Get(pc, conditions.Ready); c == nil || c.Reason != ReasonConnectionFailed || c.Message != msg {
				r.recorder.Eventf(pc, nil, corev1.EventTypeWarning, ReasonConnectionFailed, "Connect", "%s", msg)
			}
			conditions.MarkFailed(pc, ReasonConnectionFailed, msg)
			res.RequeueAfter = kitreconcile.Jitter(checkRetry)
			break
		}
		conditions.MarkReady(pc, conditions.ReasonAvailable, fmt.Sprintf("ProviderConfig %q is available: connected and logged in", pc.GetName()))
	default:
		conditions.MarkReady(pc, conditions.ReasonAvailable, fmt.Sprintf("ProviderConfig %q is available", pc.GetName()))
	}
	pc.ProviderConfigStatus().ObservedGeneration = pc.GetGeneration()
	if err := status.Status(ctx, pc, patch.WithOptimisticLock()); err != nil {
		// A Conflict too: the reconcile runs again from a fresh read.
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	return res, nil
}

// users returns "Kind/name" of every managed resource using the named
// ProviderConfig.
func (r *pcReconciler) users(ctx context.Context, name string) ([]string, error) {
	var out []string
	for _, u := range r.kind.Users {
		l := u.NewList()
		if err := r.client.List(ctx, l, client.MatchingFields{indexProviderConfigRef: name}); err != nil {
			return nil, fmt.Errorf("cannot list users of ProviderConfig %q: %w", name, err)
		}
		items, err := meta.ExtractList(l)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			o := it.(client.Object)
			gvk, _ := apiutil.GVKForObject(o, r.client.Scheme())
			out = append(out, gvk.Kind+"/"+o.GetName())
		}
	}
	sort.Strings(out)
	return out, nil
}

func summarize(users []string) string {
	if len(users) > 5 {
		return strings.Join(users[:5], ", ") + ", ..."
	}
	return strings.Join(users, ", ")
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

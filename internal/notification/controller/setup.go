package controller

import (
	"context"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	notificationv1 "github.com/strata-dev/strata/apis/notification/v1alpha1"
	"github.com/strata-dev/strata/internal/kit/egress"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
)

// recorder is the events API recorder (k8s.io/client-go/tools/events).
type recorder interface {
	Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...interface{})
}

// Options configure the notification subsystem.
type Options struct {
	// Workers is the number of concurrent reconciles per controller.
	Workers int
	// ProviderRate and ProviderBurst rate-limit messages per Provider
	// (default 5 a second, bursts of 20); more wait, in order.
	ProviderRate  rate.Limit
	ProviderBurst int
	// Now is the clock (tests may set it).
	Now func() time.Time
	// Egress is the networks Providers may not send to (the zero Policy
	// denies none).
	Egress egress.Policy
}

const indexProvider = ".spec.providerRef.name"

// Setup registers the Provider, Alert and Receiver controllers with mgr.
func Setup(mgr ctrl.Manager, o Options) error {
	if o.Workers == 0 {
		o.Workers = 2
	}
	if o.ProviderRate == 0 {
		o.ProviderRate = 5
	}
	if o.ProviderBurst == 0 {
		o.ProviderBurst = 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := mgr.GetClient()
	rec := mgr.GetEventRecorder("strata-notification")
	opts := controller.Options{RateLimiter: kitreconcile.RateLimiter(), MaxConcurrentReconciles: o.Workers}
	if err := ctrl.NewControllerManagedBy(mgr).For(&notificationv1.Provider{}).WithOptions(opts).Named("notification-provider").
		Complete(&ProviderReconciler{client: c, secrets: mgr.GetAPIReader(), recorder: rec, egress: o.Egress}); err != nil {
		return err
	}
	if err := ctrl.NewControllerManagedBy(mgr).For(&notificationv1.Receiver{}).WithOptions(opts).Named("notification-receiver").
		Complete(&ReceiverReconciler{client: c, secrets: mgr.GetAPIReader(), recorder: rec}); err != nil {
		return err
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &notificationv1.Alert{}, indexProvider, func(obj client.Object) []string {
		return []string{obj.(*notificationv1.Alert).Spec.ProviderRef.Name}
	}); err != nil {
		return err
	}
	r := &AlertReconciler{
		client: c, reader: mgr.GetAPIReader(), recorder: rec, log: mgr.GetLogger().WithName("alert"),
		limit: o.ProviderRate, burst: o.ProviderBurst, now: o.Now, limiters: map[string]*rate.Limiter{}, egress: o.Egress,
	}
	alertsIn := func(ctx context.Context, ns string, opts ...client.ListOption) []reconcile.Request {
		list := &notificationv1.AlertList{}
		if err := c.List(ctx, list, append(opts, client.InNamespace(ns))...); err != nil {
			r.log.Error(err, "cannot list Alerts", "namespace", ns)
			return nil
		}
		out := make([]reconcile.Request, 0, len(list.Items))
		for _, a := range list.Items {
			out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: a.Namespace, Name: a.Name}})
		}
		return out
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&notificationv1.Alert{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// Every event in a namespace wakes its Alerts; they pick what is
		// theirs from the cursor on.
		Watches(&corev1.Event{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
			return alertsIn(ctx, obj.GetNamespace())
		})).
		Watches(&notificationv1.Provider{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
			return alertsIn(ctx, obj.GetNamespace(), client.MatchingFields{indexProvider: obj.GetName()})
		})).
		WithOptions(opts).
		Named("notification-alert").
		Complete(r)
}

package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/kit/eventmsg"
	"github.com/strata-dev/strata/internal/kit/patch"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	"github.com/strata-dev/strata/internal/secrets/provider"
)

// Store validation retry: a store that failed is checked again soon, so a
// fixed server or Secret shows within seconds.
const storeRetry = 15 * time.Second

type storeObject interface {
	client.Object
	secretsv1.GenericStore
}

type storeReconciler struct {
	client   client.Client
	clients  *Clients
	recorder events.EventRecorder
	new      func() storeObject
}

func setupStores(mgr ctrl.Manager, c client.Client, clients *Clients, workers int) error {
	for _, k := range []struct {
		name string
		new  func() storeObject
	}{
		{"secretstore", func() storeObject { return &secretsv1.SecretStore{} }},
		{"clustersecretstore", func() storeObject { return &secretsv1.ClusterSecretStore{} }},
	} {
		r := &storeReconciler{client: c, clients: clients, new: k.new,
			recorder: mgr.GetEventRecorder("strata-" + k.name + ".secrets.strata.dev")}
		err := ctrl.NewControllerManagedBy(mgr).Named(k.name + ".secrets.strata.dev").
			For(k.new()).
			WithOptions(controller.Options{RateLimiter: kitreconcile.RateLimiter(), MaxConcurrentReconciles: workers}).
			Complete(r)
		if err != nil {
			return fmt.Errorf("cannot set up %s controller: %w", k.name, err)
		}
	}
	return nil
}

// Reconcile validates the store: it builds the provider's client and asks it
// to check the server and credentials, on every change and every
// spec.refreshInterval.
func (r *storeReconciler) Reconcile(ctx context.Context, req reconcile.Request) (res ctrl.Result, retErr error) {
	st := r.new()
	if err := r.client.Get(ctx, req.NamespacedName, st); err != nil {
		if client.IgnoreNotFound(err) == nil {
			r.clients.Forget(ctx, st.GetKind(), req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !st.GetDeletionTimestamp().IsZero() {
		return ctrl.Result{}, nil
	}
	log := ctrl.LoggerFrom(ctx).WithValues("store", klog.KObj(st), "kind", st.GetKind())
	h := patch.NewHelper(r.client, st)
	conditions.EnsureInitialized(st)
	defer func() {
		if equality.Semantic.DeepEqual(h.Base().(storeObject).GetStatus(), st.GetStatus()) {
			return
		}
		if err := h.Status(ctx, st); err != nil {
			retErr = errors.Join(retErr, client.IgnoreNotFound(err))
		}
	}()
	st.GetStatus().LastHandledReconcileAt = st.GetAnnotations()[secretsv1.ReconcileRequestAnnotation]
	name := provider.Name(&st.GetSpec().Provider)
	err := r.validate(ctx, st)
	prev := conditions.Get(st, conditions.Ready)
	switch {
	case err == nil:
		msg := fmt.Sprintf("%s store is reachable and its credentials work", name)
		if prev == nil || prev.Status != "True" {
			r.recorder.Eventf(st, nil, corev1.EventTypeNormal, secretsv1.EventValid, "Validate", "%s", msg)
		}
		conditions.MarkReady(st, secretsv1.ReasonValid, msg)
		st.GetStatus().ObservedGeneration = st.GetGeneration()
		st.GetStatus().Capabilities = capabilities(name)
		if ri := st.GetSpec().RefreshInterval; ri != nil && ri.Duration > 0 {
			return ctrl.Result{RequeueAfter: kitreconcile.Jitter(ri.Duration)}, nil
		}
		return ctrl.Result{}, nil
	case errors.Is(err, provider.ErrInvalidConfig):
		msg := eventmsg.Truncate(err.Error())
		if prev == nil || prev.Reason != secretsv1.ReasonInvalidProviderConfig || prev.Message != msg {
			r.recorder.Eventf(st, nil, corev1.EventTypeWarning, secretsv1.EventInvalidProviderConfig, "Validate", "%s", msg)
		}
		conditions.MarkStalled(st, secretsv1.ReasonInvalidProviderConfig, msg)
		st.GetStatus().ObservedGeneration = st.GetGeneration()
		log.V(1).Info("invalid store configuration", "error", err.Error())
		// A referenced Secret may be created later: look again now and then.
		return ctrl.Result{RequeueAfter: kitreconcile.Jitter(storeRetry)}, nil
	default:
		msg := eventmsg.Truncate(err.Error())
		if prev == nil || prev.Reason != secretsv1.ReasonProviderError || prev.Message != msg {
			r.recorder.Eventf(st, nil, corev1.EventTypeWarning, secretsv1.EventValidationFailed, "Validate", "%s", msg)
		}
		conditions.MarkFailed(st, secretsv1.ReasonProviderError, msg)
		log.Info("store validation failed", "error", err.Error())
		return ctrl.Result{RequeueAfter: kitreconcile.Jitter(storeRetry)}, nil
	}
}

func (r *storeReconciler) validate(ctx context.Context, st storeObject) error {
	if err := checkNamespaces(st); err != nil {
		return err
	}
	c, err := r.clients.Get(ctx, st, true)
	if err != nil {
		return err
	}
	if err := c.Validate(ctx); err != nil {
		r.clients.Drop(st.GetKind(), st.GetNamespace(), st.GetName())
		return err
	}
	return nil
}

// checkNamespaces refuses, before any request, a SecretStore whose
// references name another namespace, so the message names the field.
func checkNamespaces(st storeObject) error {
	if st.GetKind() != secretsv1.SecretStoreKind {
		return nil
	}
	refs := referencedNamespaces(&st.GetSpec().Provider)
	fields := make([]string, 0, len(refs))
	for f := range refs {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	for _, field := range fields {
		if ns := refs[field]; ns != "" && ns != st.GetNamespace() {
			return fmt.Errorf("SecretStore %s/%s: %s names namespace %q; a SecretStore may only reference its own namespace %q: %w",
				st.GetNamespace(), st.GetName(), field, ns, st.GetNamespace(), provider.ErrInvalidConfig)
		}
	}
	return nil
}

// referencedNamespaces lists the namespace of every object reference in a
// provider spec, by field path.
func referencedNamespaces(p *secretsv1.SecretStoreProvider) map[string]string {
	out := map[string]string{}
	ca := func(path string, c *secretsv1.CAProvider) {
		if c != nil {
			out[path+".caProvider.namespace"] = c.Namespace
		}
	}
	if v := p.Vault; v != nil {
		ca("spec.provider.vault", v.CAProvider)
		if a := v.Auth.TokenSecretRef; a != nil {
			out["spec.provider.vault.auth.tokenSecretRef.namespace"] = a.Namespace
		}
		if a := v.Auth.AppRole; a != nil {
			out["spec.provider.vault.auth.appRole.secretRef.namespace"] = a.SecretRef.Namespace
			if a.RoleRef != nil {
				out["spec.provider.vault.auth.appRole.roleRef.namespace"] = a.RoleRef.Namespace
			}
		}
		if a := v.Auth.Kubernetes; a != nil {
			if a.ServiceAccountRef != nil {
				out["spec.provider.vault.auth.kubernetes.serviceAccountRef.namespace"] = a.ServiceAccountRef.Namespace
			}
			if a.SecretRef != nil {
				out["spec.provider.vault.auth.kubernetes.secretRef.namespace"] = a.SecretRef.Namespace
			}
		}
	}
	if k := p.Kubernetes; k != nil {
		ca("spec.provider.kubernetes.server", k.Server.CAProvider)
		if k.Auth.Token != nil {
			out["spec.provider.kubernetes.auth.token.bearerToken.namespace"] = k.Auth.Token.BearerToken.Namespace
		}
		if k.Auth.ServiceAccount != nil {
			out["spec.provider.kubernetes.auth.serviceAccount.namespace"] = k.Auth.ServiceAccount.Namespace
		}
	}
	if w := p.Webhook; w != nil {
		ca("spec.provider.webhook", w.CAProvider)
		for i, s := range w.Secrets {
			out[fmt.Sprintf("spec.provider.webhook.secrets[%d].secretRef.namespace", i)] = s.SecretRef.Namespace
		}
	}
	return out
}

func capabilities(provider string) string {
	switch provider {
	case "vault", "kubernetes":
		return secretsv1.CapabilityReadWrite
	default:
		return secretsv1.CapabilityReadOnly
	}
}

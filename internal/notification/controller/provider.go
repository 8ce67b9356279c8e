package controller

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notificationv1 "github.com/strata-dev/strata/apis/notification/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/kit/egress"
	"github.com/strata-dev/strata/internal/kit/eventmsg"
	"github.com/strata-dev/strata/internal/kit/patch"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	"github.com/strata-dev/strata/internal/notification/deliver"
)

// resolve turns a Provider into a delivery target, reading its Secrets from
// its own namespace only. Errors carry their condition reason (Terminal for
// what only a spec change fixes) and never a Secret value.
func resolve(ctx context.Context, secrets client.Reader, p *notificationv1.Provider, deny egress.Policy) (*deliver.Target, error) {
	t := &deliver.Target{Type: p.Spec.Type, Address: p.Spec.Address, Channel: p.Spec.Channel, Proxy: p.Spec.Proxy == notificationv1.ProxyEnvironment, Egress: deny}
	if p.Spec.Timeout != nil {
		t.Timeout = p.Spec.Timeout.Duration
	}
	read := func(field string, ref *notificationv1.SecretReference) (*corev1.Secret, error) {
		if ref.Namespace != "" && ref.Namespace != p.Namespace {
			return nil, kitreconcile.Terminal(notificationv1.ReasonCrossNamespaceRefNotAllowed,
				fmt.Errorf("%s names Secret %s/%s: a Provider reads Secrets only from its own namespace %s", field, ref.Namespace, ref.Name, p.Namespace))
		}
		s := &corev1.Secret{}
		if err := secrets.Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: ref.Name}, s); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, kitreconcile.Reasoned(notificationv1.ReasonSecretNotFound, fmt.Errorf("%s: Secret %s/%s not found", field, p.Namespace, ref.Name))
			}
			return nil, fmt.Errorf("%s: cannot read Secret %s/%s: %w", field, p.Namespace, ref.Name, err)
		}
		return s, nil
	}
	if ref := p.Spec.SecretRef; ref != nil {
		s, err := read("spec.secretRef", ref)
		if err != nil {
			return nil, err
		}
		if a := string(s.Data["address"]); a != "" {
			t.Address = a
		}
		t.Token = string(s.Data["token"])
	}
	if ref := p.Spec.CertSecretRef; ref != nil {
		s, err := read("spec.certSecretRef", ref)
		if err != nil {
			return nil, err
		}
		if len(s.Data["ca.crt"]) == 0 {
			return nil, kitreconcile.Reasoned(notificationv1.ReasonSecretNotFound, fmt.Errorf("spec.certSecretRef: Secret %s/%s has no ca.crt", p.Namespace, ref.Name))
		}
		t.CA = s.Data["ca.crt"]
	}
	if t.Address == "" {
		return nil, kitreconcile.Terminal(notificationv1.ReasonInvalidSpec, errors.New("spec.address is empty and spec.secretRef has no address key"))
	}
	u, err := url.Parse(t.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The address may come from a Secret: it is not repeated.
		return nil, kitreconcile.Terminal(notificationv1.ReasonInvalidSpec, errors.New("the address (spec.address or the secret's address key) is not an http(s) URL"))
	}
	var denied *egress.DeniedError
	if err := deny.CheckHost(u.Hostname()); errors.As(err, &denied) && !t.Proxy {
		return nil, kitreconcile.Terminal(notificationv1.ReasonAddressNotAllowed, fmt.Errorf(
			"the address (spec.address or the secret's address key) is in a network the manager does not send to for tenants (%s; its --egress-denied-networks)", denied.Network))
	}
	switch t.Type {
	case notificationv1.ProviderGenericHMAC, notificationv1.ProviderGitHubStatus, notificationv1.ProviderGitLabStatus:
		if t.Token == "" {
			return nil, kitreconcile.Reasoned(notificationv1.ReasonSecretNotFound, fmt.Errorf("provider type %s needs a token: spec.secretRef must name a Secret with a token key", t.Type))
		}
	}
	if _, err := t.Client(); err != nil {
		return nil, kitreconcile.Terminal(notificationv1.ReasonInvalidSpec, fmt.Errorf("spec.certSecretRef: %w", err))
	}
	return t, nil
}

// ProviderReconciler checks Providers and reports them Ready.
type ProviderReconciler struct {
	client   client.Client
	secrets  client.Reader
	recorder recorder
	egress   egress.Policy
}

// Reconcile checks one Provider.
func (r *ProviderReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &notificationv1.Provider{}
	if err := r.client.Get(ctx, req.NamespacedName, p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	h := patch.NewHelper(r.client, p)
	conditions.EnsureInitialized(p)
	res, err := r.reconcile(ctx, p)
	if perr := h.Status(ctx, p); perr != nil && !apierrors.IsNotFound(perr) {
		return ctrl.Result{}, errors.Join(err, perr)
	}
	if kitreconcile.IsTerminal(err) {
		return ctrl.Result{}, nil
	}
	return res, err
}

func (r *ProviderReconciler) reconcile(ctx context.Context, p *notificationv1.Provider) (ctrl.Result, error) {
	if p.Spec.Suspend {
		conditions.MarkFailed(p, notificationv1.ReasonSuspended, "deliveries are suspended")
		conditions.Remove(p, conditions.Reconciling)
		p.Status.ObservedGeneration = p.Generation
		return ctrl.Result{}, nil
	}
	if _, err := resolve(ctx, r.secrets, p, r.egress); err != nil {
		return r.refuse(p, err)
	}
	conditions.MarkReady(p, notificationv1.ReasonSucceeded, "provider "+p.Spec.Type+" is ready")
	p.Status.ObservedGeneration = p.Generation
	return ctrl.Result{RequeueAfter: kitreconcile.Jitter(resync)}, nil
}

// refuse reports err with its reason; a Terminal one stalls the object.
func (r *ProviderReconciler) refuse(p *notificationv1.Provider, err error) (ctrl.Result, error) {
	reason := kitreconcile.ReasonOf(err)
	if reason == "" {
		reason = notificationv1.ReasonInvalidSpec
	}
	msg := err.Error()
	if prev := conditions.Get(p, conditions.Ready); prev == nil || prev.Message != msg {
		r.recorder.Eventf(p, nil, corev1.EventTypeWarning, reason, "Reconcile", "%s", eventmsg.Truncate(msg))
	}
	if kitreconcile.IsTerminal(err) {
		conditions.MarkStalled(p, reason, msg)
		p.Status.ObservedGeneration = p.Generation
		return ctrl.Result{}, err
	}
	conditions.MarkFailed(p, reason, msg)
	if kitreconcile.ReasonOf(err) != "" {
		return ctrl.Result{RequeueAfter: retryAfter}, nil
	}
	return ctrl.Result{}, err
}

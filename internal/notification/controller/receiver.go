package controller

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notificationv1 "github.com/strata-dev/strata/apis/notification/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/kit/eventmsg"
	"github.com/strata-dev/strata/internal/kit/patch"
)

// ReceiverReconciler checks that a Receiver's Secret has a token and
// publishes its webhook path.
type ReceiverReconciler struct {
	client   client.Client
	secrets  client.Reader
	recorder recorder
}

// Reconcile checks one Receiver.
func (r *ReceiverReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	rc := &notificationv1.Receiver{}
	if err := r.client.Get(ctx, req.NamespacedName, rc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	h := patch.NewHelper(r.client, rc)
	conditions.EnsureInitialized(rc)
	rc.Status.WebhookPath = notificationv1.ReceiverPathPrefix + rc.Namespace + "/" + rc.Name
	res, err := r.check(ctx, rc)
	if perr := h.Status(ctx, rc); perr != nil && !apierrors.IsNotFound(perr) {
		return ctrl.Result{}, errors.Join(err, perr)
	}
	return res, err
}

func (r *ReceiverReconciler) check(ctx context.Context, rc *notificationv1.Receiver) (ctrl.Result, error) {
	s := &corev1.Secret{}
	err := r.secrets.Get(ctx, types.NamespacedName{Namespace: rc.Namespace, Name: rc.Spec.SecretRef.Name}, s)
	switch {
	case apierrors.IsNotFound(err) || (err == nil && len(s.Data["token"]) == 0):
		msg := fmt.Sprintf("spec.secretRef: Secret %s/%s not found or without a token key", rc.Namespace, rc.Spec.SecretRef.Name)
		if prev := conditions.Get(rc, conditions.Ready); prev == nil || prev.Message != msg {
			r.recorder.Eventf(rc, nil, corev1.EventTypeWarning, notificationv1.ReasonSecretNotFound, "Reconcile", "%s", eventmsg.Truncate(msg))
		}
		conditions.MarkFailed(rc, notificationv1.ReasonSecretNotFound, msg)
		return ctrl.Result{RequeueAfter: retryAfter}, nil
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("cannot read Secret %s/%s: %w", rc.Namespace, rc.Spec.SecretRef.Name, err)
	}
	conditions.MarkReady(rc, notificationv1.ReasonSucceeded, "accepting alerts at "+rc.Status.WebhookPath)
	rc.Status.ObservedGeneration = rc.Generation
	return ctrl.Result{RequeueAfter: retryAfter}, nil
}

package rollout

import (
	"context"
	"encoding/json"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
)

// AlertRequest is the value of AbortAlertAnnotation.
type AlertRequest struct {
	// Alert is the alertname label.
	Alert string `json:"alert"`
	// Revision is the canary's pod-template-hash when the alert arrived.
	Revision string `json:"revision"`
	// At is when the receiver wrote the request.
	At string `json:"at"`
}

// reconcileRequests notes the request annotations not handled yet; the
// strategy acts on them. Each token is recorded as handled (whatever the
// state, so a request made when there is nothing to do is not acted on
// later) once the reconcile that saw it succeeds: a request whose action
// failed is acted on again by the retry.
func (r *Reconciler) reconcileRequests(_ context.Context, s *scope) error {
	ro := s.ro
	s.handled, s.handledSet = ro.Status.HandledRequests, true
	h := &s.handled
	take := func(key string, last *string) bool {
		v, ok := ro.Annotations[key]
		if !ok || v == *last {
			return false
		}
		*last = v
		return true
	}
	s.promote = take(deliveryv1.PromoteAnnotation, &h.Promote)
	s.promoteFull = take(deliveryv1.PromoteFullAnnotation, &h.PromoteFull)
	s.abort = take(deliveryv1.AbortAnnotation, &h.Abort)
	s.retry = take(deliveryv1.RetryAnnotation, &h.Retry)
	if take(deliveryv1.AbortAlertAnnotation, &h.AbortAlert) {
		var req AlertRequest
		if err := json.Unmarshal([]byte(ro.Annotations[deliveryv1.AbortAlertAnnotation]), &req); err == nil && req.Revision == s.hash {
			s.abortAlert = req.Alert
			if s.abortAlert == "" {
				s.abortAlert = "(unnamed)"
			}
		}
	}
	return nil
}

package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
)

// abortRollouts asks every Rollout of namespace ns with a canary in
// progress whose spec.abortOn.alerts matchers match a firing alert to
// abort, by writing deliveryv1.AbortAlertAnnotation (an AlertRequest naming
// the alert and the canary's pod-template-hash); the Rollout controller
// aborts that revision. Rollouts of other namespaces are never read or
// written. Without the Rollout CRD there is nothing to do.
func (rc *Receiver) abortRollouts(r *http.Request, ns string, p *AlertmanagerPayload) (int, error) {
	ctx := r.Context()
	list := &deliveryv1.RolloutList{}
	if err := rc.Reader.List(ctx, list, client.InNamespace(ns)); err != nil {
		if meta.IsNoMatchError(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("cannot list Rollouts: %w", err)
	}
	n := 0
	for i := range list.Items {
		ro := &list.Items[i]
		if ro.Spec.AbortOn == nil || len(ro.Spec.AbortOn.Alerts) == 0 || ro.Status.CanaryRevision == nil || ro.Status.Aborted != nil {
			continue
		}
		matchers := make([]gitopsv1.AlertMatcher, 0, len(ro.Spec.AbortOn.Alerts))
		for _, m := range ro.Spec.AbortOn.Alerts {
			matchers = append(matchers, gitopsv1.AlertMatcher{Name: m.Name, Operator: m.Operator, Value: m.Value})
		}
		canary := ro.Status.CanaryRevision.PodTemplateHash
		for _, a := range p.Alerts {
			if a.Status != "firing" || !MatchAlert(matchers, a.Labels) {
				continue
			}
			var prev AlertRequest
			_ = json.Unmarshal([]byte(ro.Annotations[deliveryv1.AbortAlertAnnotation]), &prev)
			if prev.Revision == canary {
				break // already requested for this revision
			}
			req := AlertRequest{Alert: a.Labels["alertname"], Revision: canary, At: rc.now().UTC().Format(time.RFC3339Nano)}
			v, _ := json.Marshal(req)
			patch := client.MergeFrom(ro.DeepCopy())
			if ro.Annotations == nil {
				ro.Annotations = map[string]string{}
			}
			ro.Annotations[deliveryv1.AbortAlertAnnotation] = string(v)
			if err := rc.Writer.Patch(ctx, ro, patch); err != nil {
				return n, fmt.Errorf("cannot annotate Rollout %s/%s: %w", ro.Namespace, ro.Name, err)
			}
			rc.Log.Info("rollout abort requested", "rollout", types.NamespacedName{Namespace: ro.Namespace, Name: ro.Name}, "alert", req.Alert, "revision", canary)
			n++
			break
		}
	}
	return n, nil
}

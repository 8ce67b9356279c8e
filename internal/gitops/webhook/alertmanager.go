package webhook

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	notificationv1 "github.com/strata-dev/strata/apis/notification/v1alpha1"
)

// AlertPathPrefix is where Alertmanager posts: AlertPathPrefix +
// "<namespace>/<name>" names a Receiver (notification.strata.dev).
const AlertPathPrefix = notificationv1.ReceiverPathPrefix

// AlertmanagerPayload is the body of Alertmanager's webhook (version 4).
type AlertmanagerPayload struct {
	Version string              `json:"version"`
	Status  string              `json:"status"`
	Alerts  []AlertmanagerAlert `json:"alerts"`
}

// AlertmanagerAlert is one alert of a notification.
type AlertmanagerAlert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	Fingerprint string            `json:"fingerprint"`
}

// AlertRequest is the value of gitopsv1.AlertRollbackAnnotation.
type AlertRequest struct {
	// Alert is the alertname label.
	Alert string `json:"alert"`
	// Revision is the Sync's applied revision when the alert arrived.
	Revision string `json:"revision"`
	// At is when the receiver wrote the request.
	At string `json:"at"`
}

// Alertmanager returns the handler of AlertPathPrefix: it shares the
// receiver's clients, clock and per-path rate limit.
func (rc *Receiver) Alertmanager() http.Handler { return http.HandlerFunc(rc.serveAlertmanager) }

// serveAlertmanager handles one Alertmanager notification. It answers 202
// (accepted, with the number of Syncs asked to roll back), 400, 401 (unknown
// Receiver, missing Secret, bad or missing token/signature: one answer),
// 404, 405, 413, 429 and 500, like the push receiver.
func (rc *Receiver) serveAlertmanager(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, AlertPathPrefix)
	ns, name, ok := strings.Cut(rest, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		http.Error(w, "path must be "+AlertPathPrefix+"<namespace>/<name>", http.StatusNotFound)
		return
	}
	if !rc.allow("alertmanager:" + ns + "/" + name) {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many requests for this receiver", http.StatusTooManyRequests)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, fmt.Sprintf("body larger than %d bytes", MaxBody), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	key := types.NamespacedName{Namespace: ns, Name: name}
	recv := &notificationv1.Receiver{}
	if err := rc.Reader.Get(ctx, key, recv); err != nil {
		rc.Log.V(1).Info("alert refused: unknown receiver", "receiver", key)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	sec := &corev1.Secret{}
	if err := rc.Reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: recv.Spec.SecretRef.Name}, sec); err != nil || len(sec.Data["token"]) == 0 {
		rc.Log.Info("alert refused: the receiver's secret is missing or has no token", "receiver", key)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if err := VerifyAlert(r.Header, body, sec.Data["token"]); err != nil {
		rc.Log.Info("alert refused", "receiver", key, "reason", err.Error())
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	var p AlertmanagerPayload
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, "body is not an Alertmanager notification", http.StatusBadRequest)
		return
	}
	n, err := rc.rollBack(r, ns, &p)
	if err != nil {
		rc.Log.Error(err, "cannot request rollbacks", "receiver", key)
		http.Error(w, "cannot request rollbacks", http.StatusInternalServerError)
		return
	}
	aborts, err := rc.abortRollouts(r, ns, &p)
	if err != nil {
		rc.Log.Error(err, "cannot request rollout aborts", "receiver", key)
		http.Error(w, "cannot request rollout aborts", http.StatusInternalServerError)
		return
	}
	rc.Log.Info("alerts accepted", "receiver", key, "alerts", len(p.Alerts), "rollbacks", n, "rolloutAborts", aborts)
	w.WriteHeader(http.StatusAccepted)
	_, _ = fmt.Fprintf(w, "%d rollbacks requested\n", n)
}

// rollBack asks every Sync of namespace ns whose onAlerts matchers match a
// firing alert to roll back, by writing gitopsv1.AlertRollbackAnnotation
// with the revision it has applied. Syncs of other namespaces are never
// read or written.
func (rc *Receiver) rollBack(r *http.Request, ns string, p *AlertmanagerPayload) (int, error) {
	ctx := r.Context()
	syncs := &gitopsv1.SyncList{}
	if err := rc.Reader.List(ctx, syncs, client.InNamespace(ns)); err != nil {
		return 0, fmt.Errorf("cannot list Syncs: %w", err)
	}
	n := 0
	for i := range syncs.Items {
		s := &syncs.Items[i]
		if s.Spec.Rollback == nil || len(s.Spec.Rollback.OnAlerts) == 0 || s.Status.AlertRollback != nil || s.Status.LastAppliedRevision == "" {
			continue
		}
		for _, a := range p.Alerts {
			if a.Status != "firing" || !MatchAlert(s.Spec.Rollback.OnAlerts, a.Labels) {
				continue
			}
			var prev AlertRequest
			_ = json.Unmarshal([]byte(s.Annotations[gitopsv1.AlertRollbackAnnotation]), &prev)
			if prev.Revision == s.Status.LastAppliedRevision {
				break // already requested for this revision
			}
			req := AlertRequest{Alert: a.Labels["alertname"], Revision: s.Status.LastAppliedRevision, At: rc.now().UTC().Format(time.RFC3339Nano)}
			v, _ := json.Marshal(req)
			patch := client.MergeFrom(s.DeepCopy())
			if s.Annotations == nil {
				s.Annotations = map[string]string{}
			}
			s.Annotations[gitopsv1.AlertRollbackAnnotation] = string(v)
			if err := rc.Writer.Patch(ctx, s, patch); err != nil {
				return n, fmt.Errorf("cannot annotate Sync %s/%s: %w", s.Namespace, s.Name, err)
			}
			rc.Log.Info("rollback requested", "sync", types.NamespacedName{Namespace: s.Namespace, Name: s.Name}, "alert", req.Alert, "revision", req.Revision)
			n++
			break
		}
	}
	return n, nil
}

// VerifyAlert checks an Alertmanager request: "Authorization: Bearer
// <token>" (Alertmanager's http_config.authorization) or the generic
// X-Signature HMAC of the body.
func VerifyAlert(h http.Header, body, token []byte) error {
	if auth := h.Get("Authorization"); auth != "" {
		got, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), token) != 1 {
			return ErrBadSignature
		}
		return nil
	}
	if sig := h.Get("X-Signature"); sig != "" {
		return verifyHMAC(sig, body, token)
	}
	return ErrUnsigned
}

// MatchAlert reports whether labels satisfy every matcher (Alertmanager
// semantics: a missing label is the empty string; regular expressions are
// anchored). A matcher whose regular expression does not compile matches
// nothing.
func MatchAlert(matchers []gitopsv1.AlertMatcher, labels map[string]string) bool {
	if len(matchers) == 0 {
		return false
	}
	for _, m := range matchers {
		v := labels[m.Name]
		switch m.Operator {
		case "", "=":
			if v != m.Value {
				return false
			}
		case "!=":
			if v == m.Value {
				return false
			}
		case "=~", "!~":
			re, err := regexp.Compile("^(?:" + m.Value + ")$")
			if err != nil || re.MatchString(v) != (m.Operator == "=~") {
				return false
			}
		default:
			return false
		}
	}
	return true
}

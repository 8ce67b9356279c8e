package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
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
	"github.com/strata-dev/strata/internal/notification/event"
)

const (
	// resync is how often a Ready object is looked at again.
	resync = 10 * time.Minute
	// retryAfter is how soon a missing Provider or Secret is looked for again.
	retryAfter = 30 * time.Second
	// window is how far back the cursor keeps the keys of handled
	// occurrences, so an event written late (its time before one already
	// delivered) is still sent.
	window = time.Minute
	// maxKeys bounds the cursor's keys; maxObjects the per-object state.
	maxKeys    = 1000
	maxObjects = 500
	// maxBackoff caps the wait between failed deliveries.
	maxBackoff = 5 * time.Minute
)

// AlertReconciler sends the events an Alert selects to its Provider.
type AlertReconciler struct {
	client   client.Client
	reader   client.Reader // secrets and involved objects' metadata, uncached
	recorder recorder
	log      logr.Logger
	limit    rate.Limit
	burst    int
	now      func() time.Time
	egress   egress.Policy

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// sendTimeout bounds one message's delivery and the status write that
// records it, which run on when the manager begins to stop.
const sendTimeout = 30 * time.Second

// occurrence is one pending event occurrence.
type occurrence struct {
	ev *corev1.Event
	at time.Time
	// key is the event UID and count.
	key string
}

// Reconcile delivers an Alert's pending events in order, moving its cursor
// after each one.
func (r *AlertReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	a := &notificationv1.Alert{}
	// Read live, not from the cache: the previous reconcile of this Alert
	// moved its cursor, and a cache that has not seen that write yet would
	// send the same events again.
	if err := r.reader.Get(ctx, req.NamespacedName, a); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	log := r.log.WithValues("alert", req.NamespacedName)
	h := patch.NewHelper(r.client, a)
	conditions.EnsureInitialized(a)
	defer func() {
		// The cursor and per-object state are what at-least-once delivery
		// and transitions rely on: every write carries the resourceVersion
		// read, so a stale reconcile never moves them back.
		if err := h.Status(ctx, a, patch.WithOptimisticLock()); err != nil && !apierrors.IsNotFound(err) {
			result, retErr = ctrl.Result{}, errors.Join(retErr, err)
		}
	}()
	if a.Spec.Suspend {
		conditions.MarkFailed(a, notificationv1.ReasonSuspended, "sending is suspended; events are sent when it resumes")
		conditions.Remove(a, conditions.Reconciling)
		a.Status.ObservedGeneration = a.Generation
		return ctrl.Result{}, nil
	}
	filter, err := event.NewFilter(a.Namespace, &a.Spec)
	if err != nil {
		var cross *event.CrossNamespaceError
		reason := notificationv1.ReasonInvalidSpec
		if errors.As(err, &cross) {
			reason = notificationv1.ReasonCrossNamespaceRefNotAllowed
		}
		r.stall(a, reason, err)
		return ctrl.Result{}, nil
	}
	tmpl, err := event.NewTemplates(a.Spec.Summary, a.Spec.Template)
	if err != nil {
		r.stall(a, notificationv1.ReasonInvalidSpec, err)
		return ctrl.Result{}, nil
	}
	p := &notificationv1.Provider{}
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: a.Namespace, Name: a.Spec.ProviderRef.Name}, p); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		r.fail(a, notificationv1.ReasonProviderNotReady, fmt.Sprintf("Provider %s/%s not found", a.Namespace, a.Spec.ProviderRef.Name))
		return ctrl.Result{RequeueAfter: retryAfter}, nil
	}
	if p.Spec.Suspend {
		r.fail(a, notificationv1.ReasonProviderNotReady, fmt.Sprintf("Provider %s/%s is suspended; events are sent when it resumes", a.Namespace, p.Name))
		return ctrl.Result{}, nil
	}
	target, err := resolve(ctx, r.reader, p, r.egress)
	if err != nil {
		r.fail(a, notificationv1.ReasonProviderNotReady, fmt.Sprintf("Provider %s/%s: %v", a.Namespace, p.Name, err))
		return ctrl.Result{RequeueAfter: retryAfter}, nil
	}
	hc, err := target.Client()
	if err != nil {
		r.fail(a, notificationv1.ReasonProviderNotReady, fmt.Sprintf("Provider %s/%s: %v", a.Namespace, p.Name, err))
		return ctrl.Result{RequeueAfter: retryAfter}, nil
	}
	if a.Status.Cursor == nil {
		// Events from before the Alert existed are not sent.
		a.Status.Cursor = &notificationv1.Cursor{Time: metav1.NewMicroTime(a.CreationTimestamp.Time)}
	}
	pending, err := r.pending(ctx, a)
	if err != nil {
		return ctrl.Result{}, err
	}
	d := &delivery{r: r, a: a, filter: filter, tmpl: tmpl, target: target, http: hc, log: log, labels: map[string]map[string]string{}}
	limiter := r.limiter(a.Namespace + "/" + p.Name)
	for _, o := range pending {
		if ctx.Err() != nil {
			// Stopping: every message sent is recorded; the rest waits
			// for the next start.
			return ctrl.Result{}, nil
		}
		ev, send := d.decide(ctx, o)
		if !send {
			advance(a.Status.Cursor, o)
			continue
		}
		if res := limiter.Reserve(); res.Delay() > 0 {
			res.Cancel()
			return ctrl.Result{RequeueAfter: res.Delay()}, nil
		}
		// A message once begun is sent and recorded whatever happens to
		// ctx: a shutdown that begins meanwhile (the manager waits for
		// this reconcile) must neither cut the request after the receiver
		// took it nor stop the record, or the restarted manager would send
		// the message again.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendTimeout)
		if err := d.send(sctx, ev); err != nil {
			cancel()
			return r.deliveryFailed(a, p, ev, err), nil
		}
		d.sent(ev)
		advance(a.Status.Cursor, o)
		// The message is out: record it (and everything before it) at
		// once, so a restart does not send it again.
		err := h.Status(sctx, a, patch.WithOptimisticLock())
		cancel()
		if err != nil {
			return ctrl.Result{}, err
		}
	}
	trimCursor(a.Status.Cursor, r.now())
	boundObjects(a)
	if a.Status.Failures > 0 {
		r.recorder.Eventf(a, nil, corev1.EventTypeNormal, notificationv1.EventDeliveryRecovered, "Deliver", "messages to Provider %s are delivered again", p.Name)
		a.Status.Failures = 0
	}
	msg := "all selected events delivered to Provider " + p.Name
	conditions.MarkReady(a, notificationv1.ReasonSucceeded, msg)
	a.Status.ObservedGeneration = a.Generation
	return ctrl.Result{RequeueAfter: kitreconcile.Jitter(resync)}, nil
}

func (r *AlertReconciler) stall(a *notificationv1.Alert, reason string, err error) {
	msg := err.Error()
	if prev := conditions.Get(a, conditions.Ready); prev == nil || prev.Message != msg {
		r.recorder.Eventf(a, nil, corev1.EventTypeWarning, reason, "Reconcile", "%s", eventmsg.Truncate(msg))
	}
	conditions.MarkStalled(a, reason, msg)
	a.Status.ObservedGeneration = a.Generation
}

func (r *AlertReconciler) fail(a *notificationv1.Alert, reason, msg string) {
	if prev := conditions.Get(a, conditions.Ready); prev == nil || prev.Message != msg {
		r.recorder.Eventf(a, nil, corev1.EventTypeWarning, reason, "Reconcile", "%s", eventmsg.Truncate(msg))
	}
	conditions.MarkFailed(a, reason, msg)
}

// deliveryFailed reports an undeliverable message (condition and event
// DeliveryFailed) and retries it with backoff; the cursor stays before it,
// so it is never dropped.
func (r *AlertReconciler) deliveryFailed(a *notificationv1.Alert, p *notificationv1.Provider, ev *event.Event, err error) ctrl.Result {
	a.Status.Failures++
	msg := fmt.Sprintf("cannot deliver %s %s to Provider %s: %v; retrying", ev.InvolvedObject.String(), ev.Reason, p.Name, err)
	if prev := conditions.Get(a, conditions.Ready); prev == nil || prev.Message != msg {
		r.recorder.Eventf(a, nil, corev1.EventTypeWarning, notificationv1.EventDeliveryFailed, "Deliver", "%s", eventmsg.Truncate(msg))
	}
	reason := notificationv1.ReasonDeliveryFailed
	if egress.IsDenied(err) {
		reason = notificationv1.ReasonAddressNotAllowed
	}
	conditions.MarkFailed(a, reason, msg)
	r.log.Info("delivery failed", "alert", client.ObjectKeyFromObject(a), "provider", p.Name, "object", ev.InvolvedObject.String(), "reason", ev.Reason, "error", err.Error(), "failures", a.Status.Failures)
	return ctrl.Result{RequeueAfter: Backoff(int(a.Status.Failures))}
}

// Backoff is the wait after n consecutive failed deliveries: 1s doubling to
// at most five minutes, jittered.
func Backoff(n int) time.Duration {
	d := time.Second
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	if d > maxBackoff {
		d = maxBackoff
	}
	return kitreconcile.Jitter(d)
}

func (r *AlertReconciler) limiter(key string) *rate.Limiter {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.limiters[key]
	if !ok {
		l = rate.NewLimiter(r.limit, r.burst)
		r.limiters[key] = l
	}
	return l
}

// pending lists the occurrences of events in the Alert's namespace that the
// cursor has not handled, oldest first.
func (r *AlertReconciler) pending(ctx context.Context, a *notificationv1.Alert) ([]occurrence, error) {
	list := &corev1.EventList{}
	if err := r.client.List(ctx, list, client.InNamespace(a.Namespace)); err != nil {
		return nil, fmt.Errorf("cannot list events: %w", err)
	}
	c := a.Status.Cursor
	done := map[string]bool{}
	for _, k := range c.Keys {
		if i := strings.LastIndexByte(k, '@'); i >= 0 {
			k = k[:i]
		}
		done[k] = true
	}
	var out []occurrence
	for i := range list.Items {
		ev := &list.Items[i]
		o := event.OccurrenceOf(ev)
		at := o.Time.Truncate(time.Microsecond)
		if at.Before(c.Time.Time) || done[o.Key] {
			continue
		}
		out = append(out, occurrence{ev: ev, at: at, key: o.Key})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].at.Equal(out[j].at) {
			return out[i].at.Before(out[j].at)
		}
		return out[i].key < out[j].key
	})
	return out, nil
}

// advance records o as handled.
func advance(c *notificationv1.Cursor, o occurrence) {
	// Keys are "<uid>/<count>@<time>"; pending compares the part before @.
	c.Keys = append(c.Keys, o.key+"@"+o.at.UTC().Format(keyTime))
}

const keyTime = "2006-01-02T15:04:05.000000Z"

// trimCursor moves the cursor's time to now minus the window and forgets
// the keys of occurrences before it (at most maxKeys are kept).
func trimCursor(c *notificationv1.Cursor, now time.Time) {
	low := now.Add(-window).Truncate(time.Microsecond)
	if low.Before(c.Time.Time) {
		low = c.Time.Time
	}
	keep := c.Keys[:0]
	for _, k := range c.Keys {
		if at, ok := keyAt(k); !ok || !at.Before(low) {
			keep = append(keep, k)
		}
	}
	if len(keep) > maxKeys {
		sort.Slice(keep, func(i, j int) bool { a, _ := keyAt(keep[i]); b, _ := keyAt(keep[j]); return a.Before(b) })
		drop := keep[:len(keep)-maxKeys]
		if at, ok := keyAt(drop[len(drop)-1]); ok && at.After(low) {
			low = at
		}
		keep = keep[len(keep)-maxKeys:]
	}
	c.Time = metav1.NewMicroTime(low)
	c.Keys = keep
}

func keyAt(k string) (time.Time, bool) {
	i := strings.LastIndexByte(k, '@')
	if i < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(keyTime, k[i+1:])
	return t, err == nil
}

// delivery is one reconcile's sending state.
type delivery struct {
	r      *AlertReconciler
	a      *notificationv1.Alert
	filter *event.Filter
	tmpl   *event.Templates
	target *deliver.Target
	http   *http.Client
	log    logr.Logger
	labels map[string]map[string]string
	// body of the event being sent.
	body string
}

// decide builds the event of o and says whether it is to be sent, applying
// sources, severity, lists and the mode.
func (d *delivery) decide(ctx context.Context, o occurrence) (*event.Event, bool) {
	ev := event.From(o.ev, d.a.Spec.EventMetadata)
	obj := ev.InvolvedObject
	if obj.Group() == notificationv1.GroupVersion.Group {
		// The notification kinds' own events (DeliveryFailed) are never
		// sent: a failing Provider would feed itself.
		return ev, false
	}
	if d.filter.Source(obj, func() map[string]string { return d.labelsOf(ctx, obj) }) == nil {
		return ev, false
	}
	st := d.state(obj.String())
	now := d.r.now()
	repeat := time.Duration(0)
	if d.a.Spec.RepeatInterval != nil {
		repeat = d.a.Spec.RepeatInterval.Duration
	}
	if d.a.Spec.Mode == notificationv1.ModeTransitions {
		switch {
		case ev.Failed() && st.Failing:
			if repeat == 0 || st.LastSent == nil || now.Sub(st.LastSent.Time) < repeat {
				return ev, false
			}
			ev.Transition = "failure"
		case ev.Failed():
			ev.Transition = "failure"
		case st.Failing:
			ev.Transition = "recovery"
		default:
			return ev, false
		}
	} else if repeat > 0 && st.LastKey == messageKey(ev) && st.LastSent != nil && now.Sub(st.LastSent.Time) < repeat {
		return ev, false
	}
	if !d.filter.Wanted(ev, ev.Transition == "recovery") {
		return ev, false
	}
	if ev.Revision == "" {
		ev.Revision = d.revisionOf(ctx, obj)
	}
	if deliver.NeedsCommit(d.target.Type) && ev.CommitSHA() == "" {
		// A commit status is set on a commit: an event that names none (a
		// claim's, a Sync's before its first fetch) has nowhere to go. It
		// is passed over, as Flux does, rather than retried until it
		// expires while it holds back every message after it.
		d.log.V(1).Info("event names no commit; a commit-status Provider cannot take it", "object", obj.String(), "reason", ev.Reason)
		return ev, false
	}
	return ev, true
}

func messageKey(ev *event.Event) string { return ev.Reason + "\x00" + ev.Message }

func (d *delivery) send(ctx context.Context, ev *event.Event) error {
	body, err := d.tmpl.Render(ev)
	if err != nil {
		return err
	}
	return deliver.Send(ctx, d.http, d.target, ev, body)
}

// sent records a delivered event in status.
func (d *delivery) sent(ev *event.Event) {
	st := d.state(ev.InvolvedObject.String())
	now := metav1.NewTime(d.r.now())
	switch ev.Transition {
	case "failure":
		st.Failing = true
	case "recovery":
		st.Failing = false
	}
	st.LastKey, st.LastSent = messageKey(ev), &now
	d.a.Status.LastDeliveredEvent = &notificationv1.DeliveredEvent{
		Object: ev.InvolvedObject.String(), Reason: ev.Reason, Message: eventmsg.Truncate(ev.Message),
		Time: metav1.NewMicroTime(ev.Timestamp), DeliveredAt: now,
	}
	boundObjects(d.a)
}

// state returns the Alert's state of an object, adding it when new.
func (d *delivery) state(obj string) *notificationv1.ObjectState {
	for i := range d.a.Status.Objects {
		if d.a.Status.Objects[i].Object == obj {
			return &d.a.Status.Objects[i]
		}
	}
	d.a.Status.Objects = append(d.a.Status.Objects, notificationv1.ObjectState{Object: obj})
	return &d.a.Status.Objects[len(d.a.Status.Objects)-1]
}

// boundObjects drops the least recently sent objects that are not failing
// once there are more than maxObjects, and objects never sent to.
func boundObjects(a *notificationv1.Alert) {
	objs := a.Status.Objects[:0]
	for _, o := range a.Status.Objects {
		if o.LastSent != nil || o.Failing {
			objs = append(objs, o)
		}
	}
	sort.SliceStable(objs, func(i, j int) bool {
		if objs[i].Failing != objs[j].Failing {
			return objs[i].Failing
		}
		return objs[i].LastSent != nil && objs[j].LastSent != nil && objs[i].LastSent.After(objs[j].LastSent.Time)
	})
	if len(objs) > maxObjects {
		objs = objs[:maxObjects]
	}
	a.Status.Objects = objs
}

// labelsOf reads the involved object's labels (for matchLabels).
func (d *delivery) labelsOf(ctx context.Context, o event.Object) map[string]string {
	if l, ok := d.labels[o.String()]; ok {
		return l
	}
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(schema.FromAPIVersionAndKind(o.APIVersion, o.Kind))
	var l map[string]string
	if err := d.r.reader.Get(ctx, types.NamespacedName{Namespace: o.Namespace, Name: o.Name}, m); err == nil {
		l = m.GetLabels()
	} else {
		d.log.V(1).Info("cannot read the labels of an event's object", "object", o.String(), "error", err.Error())
	}
	d.labels[o.String()] = l
	return l
}

// revisionOf reads the revision a Strata object is at, for commit statuses
// of events without the revision annotation: a Sync's last attempted
// revision, a GitRepository's artifact revision.
func (d *delivery) revisionOf(ctx context.Context, o event.Object) string {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(o.APIVersion)
	u.SetKind(o.Kind)
	if !event.IsStrata(o.Group()) {
		return ""
	}
	if err := d.r.reader.Get(ctx, types.NamespacedName{Namespace: o.Namespace, Name: o.Name}, u); err != nil {
		return ""
	}
	for _, path := range [][]string{{"status", "lastAttemptedRevision"}, {"status", "artifact", "revision"}, {"status", "lastAppliedRevision"}} {
		if v, ok, _ := unstructured.NestedString(u.Object, path...); ok && v != "" {
			return v
		}
	}
	return ""
}

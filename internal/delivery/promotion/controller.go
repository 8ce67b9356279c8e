package promotion

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/kit/eventmsg"
	"github.com/strata-dev/strata/internal/kit/patch"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
	"github.com/strata-dev/strata/internal/kit/tenant"
)

// Options configure the Stage controller.
type Options struct {
	// DefaultServiceAccount is impersonated, in the Stage's namespace, by
	// Stages whose Sync names no service account either (the manager's
	// --default-service-account); empty means the manager's own rights
	// within the Stage's namespace.
	DefaultServiceAccount string
	// Workers is the number of Stages reconciled at once.
	Workers int
	// GitAuth reads the credentials of a GitRepository's secretRef for
	// write-back; nil disables mode gitWriteBack (reason InvalidSpec).
	GitAuth GitAuthFunc
}

// Field indexes.
const (
	indexStage     = "spec.stage"
	indexSyncRef   = "spec.syncRef"
	indexSourceKey = "spec.source.stageKey"
	indexRepo      = "stage.gitRepositories"
)

// Reconciler reconciles Stages, and the Promotions and Approvals naming them.
type Reconciler struct {
	client   client.Client
	reader   client.Reader
	recorder events.EventRecorder
	log      logr.Logger
	opts     Options
	now      func() time.Time

	clients *tenant.Clients // acting as the tenant
}

// Setup registers the Stage controller with mgr.
func Setup(mgr ctrl.Manager, o Options) error {
	if o.Workers <= 0 {
		o.Workers = 2
	}
	r := &Reconciler{
		client:   mgr.GetClient(),
		reader:   mgr.GetAPIReader(),
		recorder: mgr.GetEventRecorder("strata-promotion"),
		log:      mgr.GetLogger().WithName("stage"),
		opts:     o,
		now:      time.Now,
		clients:  tenant.NewClients(mgr.GetConfig(), mgr.GetScheme(), mgr.GetRESTMapper()),
	}
	ctx := context.Background()
	fi := mgr.GetFieldIndexer()
	if err := fi.IndexField(ctx, &deliveryv1.Promotion{}, indexStage, func(o client.Object) []string {
		return []string{o.(*deliveryv1.Promotion).Spec.Stage}
	}); err != nil {
		return err
	}
	if err := fi.IndexField(ctx, &deliveryv1.Approval{}, indexStage, func(o client.Object) []string {
		return []string{o.(*deliveryv1.Approval).Spec.Stage}
	}); err != nil {
		return err
	}
	if err := fi.IndexField(ctx, &deliveryv1.Stage{}, indexSyncRef, func(o client.Object) []string {
		return []string{o.(*deliveryv1.Stage).Spec.SyncRef.Name}
	}); err != nil {
		return err
	}
	if err := fi.IndexField(ctx, &deliveryv1.Stage{}, indexSourceKey, func(o client.Object) []string {
		s := o.(*deliveryv1.Stage)
		if s.Spec.Source.Stage == "" {
			return nil
		}
		return []string{sourceKey(s)}
	}); err != nil {
		return err
	}
	byStageName := func(name func(client.Object) string) handler.EventHandler {
		return handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name(o)}}}
		})
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&deliveryv1.Stage{}).
		Owns(&deliveryv1.AnalysisRun{}).
		Watches(&deliveryv1.Promotion{}, byStageName(func(o client.Object) string { return o.(*deliveryv1.Promotion).Spec.Stage })).
		Watches(&deliveryv1.Approval{}, byStageName(func(o client.Object) string { return o.(*deliveryv1.Approval).Spec.Stage })).
		Watches(&gitopsv1.Sync{}, handler.EnqueueRequestsFromMapFunc(r.stagesOfSync)).
		Watches(&gitopsv1.GitRepository{}, handler.EnqueueRequestsFromMapFunc(r.stagesInNamespace)).
		Watches(&deliveryv1.Stage{}, handler.EnqueueRequestsFromMapFunc(r.downstreamStages)).
		Watches(&deliveryv1.Pipeline{}, handler.EnqueueRequestsFromMapFunc(r.stagesInNamespace)).
		WithOptions(controller.Options{RateLimiter: kitreconcile.RateLimiter(), MaxConcurrentReconciles: o.Workers}).
		Named("stage").
		Complete(r)
}

// sourceKey is the namespace/name of a Stage's source stage.
func sourceKey(s *deliveryv1.Stage) string {
	ns := s.Spec.Source.Namespace
	if ns == "" {
		ns = s.Namespace
	}
	return ns + "/" + s.Spec.Source.Stage
}

func requests(stages []deliveryv1.Stage) []reconcile.Request {
	out := make([]reconcile.Request, 0, len(stages))
	for _, s := range stages {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: s.Namespace, Name: s.Name}})
	}
	return out
}

func (r *Reconciler) stagesOfSync(ctx context.Context, o client.Object) []reconcile.Request {
	var l deliveryv1.StageList
	if err := r.client.List(ctx, &l, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexSyncRef: o.GetName()}); err != nil {
		return nil
	}
	return requests(l.Items)
}

func (r *Reconciler) stagesInNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	var l deliveryv1.StageList
	if err := r.client.List(ctx, &l, client.InNamespace(o.GetNamespace())); err != nil {
		return nil
	}
	return requests(l.Items)
}

func (r *Reconciler) downstreamStages(ctx context.Context, o client.Object) []reconcile.Request {
	var l deliveryv1.StageList
	if err := r.client.List(ctx, &l, client.MatchingFields{indexSourceKey: o.GetNamespace() + "/" + o.GetName()}); err != nil {
		return nil
	}
	return requests(l.Items)
}

// tenantUser is who a Stage acts as: its serviceAccountName, else its
// Sync's, else the manager's default, in the Stage's namespace; "" is the
// manager itself.
func (r *Reconciler) tenantUser(st *deliveryv1.Stage, s *gitopsv1.Sync) string {
	syncSA := ""
	if s != nil {
		syncSA = s.Spec.ServiceAccountName
	}
	return tenant.User(st.Namespace, st.Spec.ServiceAccountName, syncSA, r.opts.DefaultServiceAccount)
}

// tenantClient is an uncached client acting as user, or the manager's
// uncached reader/writer when user is "".
func (r *Reconciler) tenantClient(user string) (client.Client, error) {
	return r.clients.For(user)
}

// scope is what one reconcile of a Stage knows.
type scope struct {
	stage     *deliveryv1.Stage
	policy    deliveryv1.PromotionPolicy // with the Pipeline's defaults
	sync      *gitopsv1.Sync
	repo      *gitopsv1.GitRepository // the Sync's GitRepository
	tenant    client.Client
	user      string
	windows   []window
	following bool // the stage's Sync deploys its source GitRepository itself

	// candidates are the revisions verified upstream, newest first.
	candidates []deliveryv1.VerifiedRevision
	// upstreamCurrent is the upstream stage's current revision, which may be
	// under verification.
	upstreamCurrent string
	upstreamName    string

	// prevPending is what the stage waited for before this reconcile.
	prevPending *deliveryv1.PendingPromotion
	// failed is set when the current revision failed its verification.
	failed string

	requeue time.Duration
}

func (sc *scope) requeueIn(d time.Duration) {
	if d <= 0 {
		d = time.Second
	}
	if sc.requeue == 0 || d < sc.requeue {
		sc.requeue = d
	}
}

// Reconcile observes the stage's deployment and verification and moves the
// next revision through its gates.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	st := &deliveryv1.Stage{}
	if err := r.client.Get(ctx, req.NamespacedName, st); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, r.orphans(ctx, req.NamespacedName)
		}
		return ctrl.Result{}, err
	}
	if !st.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	log := r.log.WithValues("stage", req.NamespacedName)
	h := patch.NewHelper(r.client, st)
	conditions.EnsureInitialized(st)
	defer func() {
		// In-flight promotions and verified revisions are what later
		// steps rely on: a write based on a stale read must not replace
		// newer ones (a Conflict retries the reconcile).
		if err := h.Status(ctx, st, patch.WithOptimisticLock()); err != nil && !apierrors.IsNotFound(err) {
			retErr = errors.Join(retErr, err)
			result = ctrl.Result{}
		}
	}()
	st.Status.Pipeline = st.Spec.Pipeline

	sc := &scope{stage: st, policy: st.Spec.Promotion}
	for _, phase := range []func(context.Context, *scope) error{
		r.loadSpec,
		r.loadTargets,
		r.observe,
		r.loadCandidates,
		r.promote,
	} {
		if err := phase(ctx, sc); err != nil {
			return r.fail(ctx, st, err, log)
		}
	}
	r.summarize(sc)
	st.Status.ObservedGeneration = st.Generation
	return ctrl.Result{RequeueAfter: sc.requeue}, nil
}

// fail reports err on the Stage: Stalled for user errors, Ready=False for
// transient ones (retried).
func (r *Reconciler) fail(_ context.Context, st *deliveryv1.Stage, err error, log logr.Logger) (ctrl.Result, error) {
	reason := kitreconcile.ReasonOf(err)
	if reason == "" {
		reason = deliveryv1.ReasonPromotionFailed
	}
	prev := conditions.Get(st, conditions.Ready)
	if kitreconcile.IsTerminal(err) {
		// The spec was read and cannot work: that is its verdict.
		st.Status.ObservedGeneration = st.Generation
		conditions.MarkStalled(st, reason, err.Error())
	} else {
		conditions.MarkFailed(st, reason, err.Error())
	}
	if prev == nil || prev.Reason != reason || prev.Message != err.Error() {
		r.recorder.Eventf(st, nil, corev1.EventTypeWarning, reason, "Reconcile", "%s", eventmsg.Truncate(err.Error()))
	}
	log.V(1).Info("stage not ready", "reason", reason, "error", err.Error())
	if kitreconcile.IsTerminal(err) {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, err
}

// loadSpec applies the Pipeline's defaults and parses the windows.
func (r *Reconciler) loadSpec(ctx context.Context, sc *scope) error {
	st := sc.stage
	if st.Spec.Pipeline != "" {
		p := &deliveryv1.Pipeline{}
		err := r.client.Get(ctx, types.NamespacedName{Namespace: st.Namespace, Name: st.Spec.Pipeline}, p)
		switch {
		case apierrors.IsNotFound(err):
			// A pipeline is only a grouping; without it there are no defaults.
		case err != nil:
			return fmt.Errorf("cannot read Pipeline %s: %w", st.Spec.Pipeline, err)
		case p.Spec.Defaults != nil:
			d := p.Spec.Defaults
			if len(sc.policy.Windows) == 0 {
				sc.policy.Windows = d.Windows
			}
			if sc.policy.Approval == nil {
				sc.policy.Approval = d.Approval
			}
			if sc.policy.RequiredSoakTime == nil {
				sc.policy.RequiredSoakTime = d.RequiredSoakTime
			}
		}
	}
	ws, err := parseWindows(sc.policy.Windows)
	if err != nil {
		return kitreconcile.Terminal(deliveryv1.ReasonInvalidSpec, err)
	}
	sc.windows = ws
	if sc.policy.Mode == deliveryv1.PromotionModeGitWriteBack && r.opts.GitAuth == nil {
		return kitreconcile.Terminal(deliveryv1.ReasonInvalidSpec, errors.New("spec.promotion.mode gitWriteBack is not enabled in this manager"))
	}
	return nil
}

// loadTargets reads the stage's Sync and its GitRepository, both in the
// Stage's namespace.
func (r *Reconciler) loadTargets(ctx context.Context, sc *scope) error {
	st := sc.stage
	s := &gitopsv1.Sync{}
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: st.Namespace, Name: st.Spec.SyncRef.Name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return kitreconcile.Reasoned(deliveryv1.ReasonSyncNotFound, fmt.Errorf("spec.syncRef: Sync %s/%s not found", st.Namespace, st.Spec.SyncRef.Name))
		}
		return fmt.Errorf("cannot read Sync %s: %w", st.Spec.SyncRef.Name, err)
	}
	sc.sync = s
	if ns := s.Spec.SourceRef.Namespace; ns != "" && ns != st.Namespace {
		return kitreconcile.Terminal(deliveryv1.ReasonAccessDenied,
			fmt.Errorf("Sync %s deploys GitRepository %s/%s from another namespace; a Stage only promotes into GitRepositories of its own namespace", s.Name, ns, s.Spec.SourceRef.Name))
	}
	repo := &gitopsv1.GitRepository{}
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: st.Namespace, Name: s.Spec.SourceRef.Name}, repo); err != nil {
		if apierrors.IsNotFound(err) {
			return kitreconcile.Reasoned(deliveryv1.ReasonSourceNotReady, fmt.Errorf("GitRepository %s/%s of Sync %s not found", st.Namespace, s.Spec.SourceRef.Name, s.Name))
		}
		return fmt.Errorf("cannot read GitRepository %s: %w", s.Spec.SourceRef.Name, err)
	}
	sc.repo = repo
	sc.following = st.Spec.Source.GitRepository != "" && st.Spec.Source.GitRepository == repo.Name
	sc.user = r.tenantUser(st, s)
	c, err := r.tenantClient(sc.user)
	if err != nil {
		return err
	}
	sc.tenant = c
	return nil
}

// loadCandidates reads the revisions verified upstream, newest first.
func (r *Reconciler) loadCandidates(ctx context.Context, sc *scope) error {
	st := sc.stage
	src := st.Spec.Source
	if src.GitRepository != "" {
		if sc.following {
			return nil
		}
		repo := &gitopsv1.GitRepository{}
		if err := r.client.Get(ctx, types.NamespacedName{Namespace: st.Namespace, Name: src.GitRepository}, repo); err != nil {
			if apierrors.IsNotFound(err) {
				return kitreconcile.Reasoned(deliveryv1.ReasonSourceNotReady, fmt.Errorf("spec.source.gitRepository: GitRepository %s/%s not found", st.Namespace, src.GitRepository))
			}
			return fmt.Errorf("cannot read GitRepository %s: %w", src.GitRepository, err)
		}
		sc.upstreamName = "GitRepository " + repo.Name
		if a := repo.Status.Artifact; a != nil {
			sc.candidates = []deliveryv1.VerifiedRevision{{Revision: commitOf(a.Revision), VerifiedAt: a.LastUpdateTime}}
		}
		return nil
	}
	ns := src.Namespace
	if ns == "" {
		ns = st.Namespace
	}
	reader := client.Reader(r.client)
	if ns != st.Namespace {
		// Another namespace's stage is read with the tenant's own rights.
		if sc.user == "" {
			return kitreconcile.Terminal(deliveryv1.ReasonAccessDenied,
				fmt.Errorf("spec.source names Stage %s/%s in another namespace: set spec.serviceAccountName to an account allowed to get it", ns, src.Stage))
		}
		reader = sc.tenant
	}
	up := &deliveryv1.Stage{}
	if err := reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: src.Stage}, up); err != nil {
		switch {
		case apierrors.IsForbidden(err):
			return kitreconcile.Reasoned(deliveryv1.ReasonAccessDenied, fmt.Errorf("%s may not get Stage %s/%s (spec.source)", userName(sc.user), ns, src.Stage))
		case apierrors.IsNotFound(err):
			return kitreconcile.Reasoned(deliveryv1.ReasonSourceNotReady, fmt.Errorf("spec.source: Stage %s/%s not found", ns, src.Stage))
		}
		return fmt.Errorf("cannot read Stage %s/%s: %w", ns, src.Stage, err)
	}
	sc.upstreamName = "stage " + up.Name
	sc.candidates = up.Status.VerifiedRevisions
	sc.upstreamCurrent = up.Status.CurrentRevision
	return nil
}

func userName(u string) string {
	if u == "" {
		return "the manager"
	}
	return u
}

// commitOf returns the commit SHA of an API revision (`main@sha1:<hex>`,
// `sha1:<hex>`), or rev itself.
func commitOf(rev string) string {
	if i := strings.LastIndex(rev, "sha1:"); i >= 0 {
		return rev[i+len("sha1:"):]
	}
	return rev
}

// matches says whether prefix (at least 7 hex digits) names full.
func matches(full, prefix string) bool {
	return full != "" && len(prefix) >= 7 && strings.HasPrefix(full, prefix)
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// summarize sets the Ready condition from what the stage waits for.
func (r *Reconciler) summarize(sc *scope) {
	st := sc.stage
	switch {
	case sc.failed != "" && st.Status.InFlight == nil:
		conditions.MarkFailed(st, deliveryv1.ReasonVerificationFailed, sc.failed)
	case st.Status.InFlight == nil && st.Status.Pending == nil && len(st.Status.History) > 0 && st.Status.History[0].Result == resultRolledBack:
		// Reported until the next promotion, as a Sync reports its
		// rollback until the source moves on.
		conditions.MarkFailed(st, deliveryv1.ReasonVerificationFailed, st.Status.History[0].Message)
	case st.Status.InFlight != nil:
		f := st.Status.InFlight
		conditions.MarkProgressing(st, deliveryv1.ReasonPromoting, fmt.Sprintf("promoting revision %s (Promotion %s); waiting for Sync %s to apply it", short(f.Revision), f.Promotion, sc.sync.Name))
	case st.Status.Pending != nil:
		p := st.Status.Pending
		switch p.WaitingFor {
		case deliveryv1.WaitingForApproval:
			conditions.MarkFailed(st, deliveryv1.ReasonAwaitingApproval, p.Message)
		case deliveryv1.WaitingForSoak:
			conditions.MarkProgressing(st, deliveryv1.ReasonAwaitingSoak, p.Message)
		case deliveryv1.WaitingForWindow:
			conditions.MarkProgressing(st, deliveryv1.ReasonAwaitingWindow, p.Message)
		default:
			conditions.MarkProgressing(st, deliveryv1.ReasonAwaitingVerification, p.Message)
		}
	case st.Status.CurrentRevision != "" && isVerified(st, st.Status.CurrentRevision):
		conditions.MarkReady(st, deliveryv1.ReasonStageReady, fmt.Sprintf("revision %s is deployed by Sync %s and verified", short(st.Status.CurrentRevision), sc.sync.Name))
	case st.Status.CurrentRevision != "":
		conditions.MarkProgressing(st, deliveryv1.ReasonAwaitingVerification, fmt.Sprintf("revision %s is deployed by Sync %s and not verified yet", short(st.Status.CurrentRevision), sc.sync.Name))
	default:
		conditions.MarkProgressing(st, deliveryv1.ReasonAwaitingVerification, fmt.Sprintf("Sync %s has not applied a revision yet", sc.sync.Name))
	}
}

func isVerified(st *deliveryv1.Stage, rev string) bool {
	for _, v := range st.Status.VerifiedRevisions {
		if v.Revision == rev {
			return true
		}
	}
	return false
}

// sortPromotions orders promotions oldest first (by creation, then name).
func sortPromotions(ps []deliveryv1.Promotion) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i].CreationTimestamp, ps[j].CreationTimestamp
		if !a.Equal(&b) {
			return a.Before(&b)
		}
		return ps[i].Name < ps[j].Name
	})
}

func metaNow(t time.Time) metav1.Time { return metav1.NewTime(t.Truncate(time.Second)) }

// orphans marks the open Promotions naming a Stage that does not exist,
// so none reads as done; they proceed once the Stage is created.
func (r *Reconciler) orphans(ctx context.Context, key types.NamespacedName) error {
	var pl deliveryv1.PromotionList
	if err := r.client.List(ctx, &pl, client.InNamespace(key.Namespace), client.MatchingFields{indexStage: key.Name}); err != nil {
		return fmt.Errorf("cannot list Promotions: %w", err)
	}
	for i := range pl.Items {
		if p := &pl.Items[i]; !isFinal(p.Status.Phase) {
			r.setPhase(ctx, p, deliveryv1.PromotionPending, deliveryv1.ReasonStageNotFound,
				fmt.Sprintf("spec.stage: Stage %s/%s not found", key.Namespace, key.Name))
		}
	}
	return nil
}

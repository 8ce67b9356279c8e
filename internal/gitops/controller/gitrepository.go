package controller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	ctrlsource "sigs.k8s.io/controller-runtime/pkg/source"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/gitops/inputs"
	"github.com/strata-dev/strata/internal/gitops/source"
	"github.com/strata-dev/strata/internal/kit/patch"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
)

// GitRepositoryReconciler fetches GitRepositories into the artifact store.
type GitRepositoryReconciler struct {
	client client.Client
	// reader reads Secrets uncached, so the manager does not watch every
	// Secret in the cluster.
	reader client.Reader
	store  *source.Store
	// files are the folders file:// URLs may read.
	files    source.FileRoots
	recorder events.EventRecorder
	log      logr.Logger
}

func setupGitRepository(mgr ctrl.Manager, c client.Client, store *source.Store, files source.FileRoots, refetch <-chan event.GenericEvent, o Options) error {
	r := &GitRepositoryReconciler{
		client:   c,
		reader:   mgr.GetAPIReader(),
		store:    store,
		files:    files,
		recorder: mgr.GetEventRecorder("strata-gitrepository"),
		log:      mgr.GetLogger().WithName("gitrepository"),
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&gitopsv1.GitRepository{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		WatchesRawSource(ctrlsource.Channel(refetch, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{RateLimiter: kitreconcile.RateLimiter(), MaxConcurrentReconciles: o.Workers}).
		Named("gitrepository").
		Complete(r)
}

// repoKey names a repository in the artifact store.
func repoKey(ns, name string) string { return ns + "/" + name }

// Reconcile fetches one GitRepository.
func (r *GitRepositoryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	log := r.log.WithValues("gitrepository", req.NamespacedName)
	repo := &gitopsv1.GitRepository{}
	if err := r.client.Get(ctx, req.NamespacedName, repo); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !repo.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, repo)
	}
	if !controllerutil.ContainsFinalizer(repo, Finalizer) {
		fin := client.MergeFrom(repo.DeepCopy())
		controllerutil.AddFinalizer(repo, Finalizer)
		if err := r.client.Patch(ctx, repo, fin); err != nil {
			return ctrl.Result{}, fmt.Errorf("cannot add finalizer: %w", err)
		}
	}
	if repo.Spec.Suspend {
		log.V(1).Info("suspended")
		return ctrl.Result{}, nil
	}

	status := patch.NewHelper(r.client, repo)
	conditions.EnsureInitialized(repo)
	defer func() {
		if err := status.Status(ctx, repo); err != nil && !apierrors.IsNotFound(err) {
			retErr = errors.Join(retErr, err)
		}
	}()

	// A fetch request is recorded as handled before the remote is listed
	// and whatever the outcome: the webhook receiver absorbs deliveries
	// only while a request is not yet handled, so a push that lands after
	// this point is seen by this fetch or asks for another one.
	if v, ok := repo.Annotations[gitopsv1.ReconcileRequestAnnotation]; ok && v != repo.Status.LastHandledReconcileAt {
		repo.Status.LastHandledReconcileAt = v
		if err := status.Status(ctx, repo); err != nil {
			return ctrl.Result{}, err
		}
	}
	r.reconcileStorage(repo)
	if err := r.files.Check(repo.Spec.URL); err != nil {
		// Only a new URL (or a new manager flag) can fix this: no retry.
		r.stall(repo, gitopsv1.ReasonFileURLNotAllowed, err)
		repo.Status.ObservedGeneration = repo.Generation
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	if err := r.reconcileSource(ctx, log, repo); err != nil {
		return ctrl.Result{RequeueAfter: retryAfter(repo.Spec.Interval.Duration)}, nil
	}
	repo.Status.ObservedGeneration = repo.Generation
	return ctrl.Result{RequeueAfter: jitter(repo.Spec.Interval.Duration)}, nil
}

// reconcileStorage notices an artifact that left the store (a new state
// folder, a manual clean-up) so the next phase fetches it again.
func (r *GitRepositoryReconciler) reconcileStorage(repo *gitopsv1.GitRepository) {
	if a := repo.Status.Artifact; a != nil && !r.store.Has(a.Digest) {
		conditions.Set(repo, gitopsv1.ArtifactInStorage, metav1.ConditionFalse, gitopsv1.ReasonStorageOperationFailed, "artifact for revision "+a.Revision+" is no longer in the store")
	}
}

// reconcileSource resolves the ref, and clones and stores the revision when
// it is new.
func (r *GitRepositoryReconciler) reconcileSource(ctx context.Context, log logr.Logger, repo *gitopsv1.GitRepository) error {
	auth, err := r.auth(ctx, repo)
	if err != nil {
		r.fail(repo, gitopsv1.ReasonAuthenticationFailed, err)
		return err
	}
	timeout := 60 * time.Second
	if repo.Spec.Timeout != nil && repo.Spec.Timeout.Duration > 0 {
		timeout = repo.Spec.Timeout.Duration
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ref := source.Ref{}
	if s := repo.Spec.Ref; s != nil {
		ref = source.Ref{Branch: s.Branch, Tag: s.Tag, SemVer: s.SemVer, Commit: s.Commit}
	}
	resolved, err := source.Resolve(ctx, repo.Spec.URL, ref, auth)
	if err != nil {
		r.fail(repo, gitopsv1.ReasonGitOperationFailed, err)
		return err
	}
	ignore := ""
	if repo.Spec.Ignore != nil {
		ignore = *repo.Spec.Ignore
	}
	if a := repo.Status.Artifact; a != nil && len(resolved.Hash) == 40 && a.Revision == source.Revision(resolved.Name, resolved.Hash) &&
		r.store.Has(a.Digest) && repo.Status.ObservedGeneration == repo.Generation {
		r.ready(repo)
		return nil
	}
	conditions.MarkProgressing(repo, gitopsv1.ReasonNewRevision, "fetching "+source.Revision(resolved.Name, resolved.Hash))
	dir, err := r.store.TempDir()
	if err != nil {
		r.fail(repo, gitopsv1.ReasonStorageOperationFailed, err)
		return err
	}
	defer os.RemoveAll(dir)
	hash, err := source.Checkout(ctx, repo.Spec.URL, resolved, auth, dir)
	if err != nil {
		r.fail(repo, gitopsv1.ReasonGitOperationFailed, err)
		return err
	}
	revision := source.Revision(resolved.Name, hash)
	digest, err := r.store.Put(repoKey(repo.Namespace, repo.Name), revision, dir, ignore)
	if err != nil {
		r.fail(repo, gitopsv1.ReasonStorageOperationFailed, err)
		return err
	}
	old := repo.Status.Artifact
	repo.Status.Artifact = &gitopsv1.Artifact{Revision: revision, Digest: digest, LastUpdateTime: metav1.Now()}
	if old == nil || old.Revision != revision || old.Digest != digest {
		log.Info("stored new artifact", "revision", revision, "digest", digest)
		r.recorder.Eventf(repo, nil, corev1.EventTypeNormal, gitopsv1.EventNewArtifact, "Fetch", "stored artifact for revision %s", revision)
		if n, err := r.store.GC(); err != nil {
			log.Error(err, "cannot garbage-collect the artifact store")
		} else if n > 0 {
			log.V(1).Info("garbage-collected artifacts", "count", n)
		}
	}
	r.ready(repo)
	return nil
}

func (r *GitRepositoryReconciler) ready(repo *gitopsv1.GitRepository) {
	msg := "stored artifact for revision " + repo.Status.Artifact.Revision
	conditions.Set(repo, gitopsv1.ArtifactInStorage, metav1.ConditionTrue, gitopsv1.ReasonSucceeded, msg)
	conditions.MarkReady(repo, gitopsv1.ReasonSucceeded, msg)
}

// fail reports a failed fetch. The last artifact stays in the status and in
// the store, so Syncs keep running the last good revision.
func (r *GitRepositoryReconciler) fail(repo *gitopsv1.GitRepository, reason string, err error) {
	msg := err.Error()
	if prev := conditions.Get(repo, conditions.Ready); prev == nil || prev.Message != msg {
		r.recorder.Eventf(repo, nil, corev1.EventTypeWarning, gitopsv1.EventGitOperationFailed, "Fetch", "%s", msg)
	}
	r.log.V(1).Info("fetch failed", "gitrepository", klog.KObj(repo), "reason", reason, "error", msg)
	conditions.MarkFailed(repo, reason, msg)
}

// stall reports what only a change of the spec (or of the manager's flags)
// can fix.
func (r *GitRepositoryReconciler) stall(repo *gitopsv1.GitRepository, reason string, err error) {
	msg := err.Error()
	if prev := conditions.Get(repo, conditions.Ready); prev == nil || prev.Message != msg {
		r.recorder.Eventf(repo, nil, corev1.EventTypeWarning, reason, "Fetch", "%s", msg)
	}
	conditions.MarkStalled(repo, reason, msg)
}

// auth reads the credentials Secret; its values never reach logs or status.
func (r *GitRepositoryReconciler) auth(ctx context.Context, repo *gitopsv1.GitRepository) (source.Auth, error) {
	return inputs.GitAuth(ctx, r.reader, repo)
}

func (r *GitRepositoryReconciler) finalize(ctx context.Context, repo *gitopsv1.GitRepository) error {
	if err := r.store.Forget(repoKey(repo.Namespace, repo.Name)); err != nil {
		return err
	}
	if _, err := r.store.GC(); err != nil {
		return err
	}
	if controllerutil.ContainsFinalizer(repo, Finalizer) {
		fin := client.MergeFrom(repo.DeepCopy())
		controllerutil.RemoveFinalizer(repo, Finalizer)
		if err := r.client.Patch(ctx, repo, fin); err != nil {
			return fmt.Errorf("cannot remove finalizer: %w", err)
		}
	}
	return nil
}

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/gitops/inputs"
	"github.com/strata-dev/strata/internal/gitops/source"
	"github.com/strata-dev/strata/internal/scheme"
)

func init() {
	extraCommands = append(extraCommands, newReconcileCommand, newSuspendCommand(true), newSuspendCommand(false))
}

// reconcileRequestAnnotation asks a controller to reconcile now; the
// controller copies the value to status.lastHandledReconcileAt.
const reconcileRequestAnnotation = "strata.dev/reconcile-requested-at"

func newReconcileCommand() *cobra.Command {
	var withSource bool
	var timeout time.Duration
	var cf *clusterFlags
	cmd := &cobra.Command{
		Use:   "reconcile KIND/NAME",
		Short: "Ask for a reconcile now, wait for it and print the result",
		Long: `reconcile sets the strata.dev/reconcile-requested-at annotation, waits until
the controller has handled it and the object is no longer reconciling, and
prints its Ready condition. With --with-source a Sync's GitRepository is
reconciled first, so a new commit is fetched and applied.
Exit status: 0 Ready, 1 not Ready, 2 error (including the timeout).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := newKube(cf)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			ns := cf.ns()
			u, m, err := k.get(ctx, args[0], ns)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			want := ""
			if withSource {
				kind, _, _ := unstructured.NestedString(u.Object, "spec", "sourceRef", "kind")
				name, _, _ := unstructured.NestedString(u.Object, "spec", "sourceRef", "name")
				srcNS, _, _ := unstructured.NestedString(u.Object, "spec", "sourceRef", "namespace")
				if name == "" {
					return &ExitError{Code: 2, Err: fmt.Errorf("%s %s has no spec.sourceRef", m.GroupVersionKind.Kind, u.GetName())}
				}
				if srcNS == "" {
					srcNS = ns
				}
				if kind == "" {
					kind = "GitRepository"
				}
				src, sm, err := k.get(ctx, kind+"/"+name, srcNS)
				if err != nil {
					return &ExitError{Code: 2, Err: err}
				}
				ready, srcRev, err := reconcileAndWait(ctx, cmd, k, src, sm, remoteRevision(ctx, cmd, k, src))
				if err != nil {
					return &ExitError{Code: 2, Err: err}
				}
				if !ready {
					return &ExitError{Code: 1}
				}
				// The Sync is done once it has applied what its source
				// just fetched, not when it finishes a reconcile that
				// began before the new artifact reached it.
				want = srcRev
			}
			if m.GroupVersionKind.Group == gitopsv1.GroupVersion.Group && m.GroupVersionKind.Kind == "GitRepository" {
				want = remoteRevision(ctx, cmd, k, u)
			}
			ready, _, err := reconcileAndWait(ctx, cmd, k, u, m, want)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if !ready {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
	cf = addClusterFlags(cmd, false)
	cmd.ValidArgsFunction = completeRef(cf)
	cmd.Flags().BoolVar(&withSource, "with-source", false, "reconcile the Sync's source (GitRepository) first")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the result")
	return cmd
}

// remoteRevision resolves a GitRepository's ref against its remote with the
// same code and credentials the controller uses, so reconcile can wait for
// that revision: the controller records a fetch request as handled before
// it fetches. It returns "" (wait for the request to be handled only) when
// the remote cannot be reached from here.
func remoteRevision(ctx context.Context, cmd *cobra.Command, k *kube, u *unstructured.Unstructured) string {
	repo := &gitopsv1.GitRepository{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, repo); err != nil {
		return ""
	}
	c, err := client.New(k.cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return ""
	}
	auth, err := inputs.GitAuth(ctx, c, repo)
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: %v; waiting for the fetch request to be handled only\n", err)
		return ""
	}
	ref := source.Ref{}
	if s := repo.Spec.Ref; s != nil {
		ref = source.Ref{Branch: s.Branch, Tag: s.Tag, SemVer: s.SemVer, Commit: s.Commit}
	}
	r, err := source.Resolve(ctx, repo.Spec.URL, ref, auth)
	if err != nil || len(r.Hash) != 40 {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: cannot resolve %s from here (%v); waiting for the fetch request to be handled only\n", repo.Spec.URL, err)
		return ""
	}
	return source.Revision(r.Name, r.Hash)
}

// reconcileAndWait annotates u, waits for the controller to handle the
// request (and, when wantRevision is set, for status.artifact.revision to
// reach it or Ready to turn False), prints the outcome and reports whether u
// ended Ready.
func reconcileAndWait(ctx context.Context, cmd *cobra.Command, k *kube, u *unstructured.Unstructured, m *meta.RESTMapping, wantRevision string) (bool, string, error) {
	ri := k.resource(m, u.GetNamespace())
	requested := time.Now().UTC().Format(time.RFC3339Nano)
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{reconcileRequestAnnotation: requested}}})
	if _, err := ri.Patch(ctx, u.GetName(), types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return false, "", fmt.Errorf("cannot annotate %s %s: %w", m.GroupVersionKind.Kind, u.GetName(), err)
	}
	kind := m.GroupVersionKind.Kind
	fmt.Fprintf(cmd.OutOrStdout(), "► reconcile requested for %s %s\n", kind, objectName(u))
	var last *unstructured.Unstructured
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		got, err := ri.Get(ctx, u.GetName(), metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = got
		handled, found, _ := unstructured.NestedString(got.Object, "status", "lastHandledReconcileAt")
		if found && handled != requested {
			return false, nil
		}
		if !found {
			// Kinds without lastHandledReconcileAt: wait for the
			// controller to observe the current generation.
			og, ok, _ := unstructured.NestedInt64(got.Object, "status", "observedGeneration")
			if ok && og < got.GetGeneration() {
				return false, nil
			}
		}
		if st, _, _ := condition(got, "Reconciling"); st == "True" {
			return false, nil
		}
		st, _, _ := condition(got, "Ready")
		if wantRevision != "" && st == "True" {
			return revisionOf(got) == wantRevision, nil
		}
		return st != "Unknown", nil
	})
	if err != nil {
		msg := ""
		if last != nil {
			st, reason, m := condition(last, "Ready")
			msg = fmt.Sprintf(" (Ready %s %s: %s)", st, reason, m)
		}
		return false, "", fmt.Errorf("%s %s: reconcile not finished%s: %w", kind, objectName(u), msg, err)
	}
	st, reason, msg := condition(last, "Ready")
	mark := "✔"
	if st != "True" {
		mark = "✗"
	}
	rev := revisionOf(last)
	shown := ""
	if rev != "" {
		shown = " revision " + rev
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s %s %s%s: Ready %s %s: %s\n", mark, kind, objectName(u), shown, st, reason, msg)
	return st == "True", rev, nil
}

// revisionOf is what a Sync last applied or a source last stored.
func revisionOf(u *unstructured.Unstructured) string {
	rev, _, _ := unstructured.NestedString(u.Object, "status", "lastAppliedRevision")
	if rev == "" {
		rev, _, _ = unstructured.NestedString(u.Object, "status", "artifact", "revision")
	}
	return rev
}

func objectName(u *unstructured.Unstructured) string {
	if u.GetNamespace() != "" {
		return u.GetNamespace() + "/" + u.GetName()
	}
	return u.GetName()
}

// newSuspendCommand returns `strata suspend` (suspend true) or `strata resume`.
func newSuspendCommand(suspend bool) func() *cobra.Command {
	return func() *cobra.Command {
		verb, short := "resume", "Resume reconciling a Sync or GitRepository"
		if suspend {
			verb, short = "suspend", "Stop reconciling a Sync or GitRepository (applied objects stay)"
		}
		var cf *clusterFlags
		cmd := &cobra.Command{
			Use:   verb + " KIND/NAME",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				k, err := newKube(cf)
				if err != nil {
					return &ExitError{Code: 2, Err: err}
				}
				ctx := cmd.Context()
				u, m, err := k.get(ctx, args[0], cf.ns())
				if err != nil {
					return &ExitError{Code: 2, Err: err}
				}
				patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"suspend": suspend}})
				got, err := k.resource(m, u.GetNamespace()).Patch(ctx, u.GetName(), types.MergePatchType, patch, metav1.PatchOptions{})
				if err != nil {
					return &ExitError{Code: 2, Err: fmt.Errorf("cannot %s %s %s: %w", verb, m.GroupVersionKind.Kind, u.GetName(), err)}
				}
				if v, found, _ := unstructured.NestedBool(got.Object, "spec", "suspend"); !found && suspend || found && v != suspend {
					return &ExitError{Code: 2, Err: fmt.Errorf("%s cannot be suspended: it has no spec.suspend", m.GroupVersionKind.Kind)}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%sed %s %s\n", strings.TrimSuffix(verb, "e"), m.GroupVersionKind.Kind, objectName(u))
				return nil
			},
		}
		cf = addClusterFlags(cmd, false)
		cmd.ValidArgsFunction = completeRef(cf)
		return cmd
	}
}

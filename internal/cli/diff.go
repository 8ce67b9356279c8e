package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/gitops/apply"
	"github.com/strata-dev/strata/internal/gitops/build"
	"github.com/strata-dev/strata/internal/gitops/inputs"
	"github.com/strata-dev/strata/internal/gitops/source"
	"github.com/strata-dev/strata/internal/kit/ownership"
	"github.com/strata-dev/strata/internal/scheme"
)

func init() { extraCommands = append(extraCommands, newDiffCommand) }

func newDiffCommand() *cobra.Command {
	var namespace, localPath string
	cmd := &cobra.Command{
		Use:   "diff sync/NAME",
		Short: "Show what a Sync would create, change and prune",
		Long: `diff builds a Sync's path exactly as the controller would — from a local
working tree with --path (the repository's top folder), else from the
GitRepository's current revision — and shows, by server-side dry-run against
the cluster in KUBECONFIG, what would be created, changed (field by field)
and pruned. Nothing is written. The values of Secrets are masked as kubectl
diff masks them: "***", or "*** (before)" and "*** (after)" when they change.

Exit status: 0 when nothing would change, 1 when something would, above 1
on an error (2).`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &ExitError{Code: 2, Err: fmt.Errorf("diff takes one argument, sync/NAME, got %d", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, name, ok := strings.Cut(args[0], "/")
			if !ok || !strings.EqualFold(kind, "sync") || name == "" {
				return &ExitError{Code: 2, Err: fmt.Errorf("argument must be sync/NAME, got %q", args[0])}
			}
			cfg, err := ctrl.GetConfig()
			if err != nil {
				return &ExitError{Code: 2, Err: fmt.Errorf("cannot load kubeconfig: %w", err)}
			}
			if namespace == "" {
				namespace = "default"
			}
			changed, err := runDiff(cmd.Context(), cmd.OutOrStdout(), cfg, namespace, name, localPath)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if changed {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &ExitError{Code: 2, Err: err} })
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace of the Sync (default \"default\")")
	cmd.Flags().StringVar(&localPath, "path", "", "local working tree (repository top folder) to build instead of the fetched revision")
	return cmd
}

// runDiff prints what applying the Sync ns/name would do and reports whether
// anything would be created, changed or pruned. It reads what it needs the
// way the Sync controller does (package inputs): build options, identity,
// owner and field manager, inventory.
func runDiff(ctx context.Context, out io.Writer, cfg *rest.Config, ns, name, localPath string) (bool, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return false, fmt.Errorf("cannot build client: %w", err)
	}
	s := &gitopsv1.Sync{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
		return false, fmt.Errorf("cannot read Sync %s/%s: %w", ns, name, err)
	}
	root := localPath
	if root == "" {
		dir, cleanup, err := checkoutSource(ctx, c, s)
		if err != nil {
			return false, err
		}
		defer cleanup()
		root = dir
	} else if _, err := os.Stat(root); err != nil {
		return false, fmt.Errorf("cannot read the working tree: %w", err)
	}
	opts, err := inputs.BuildOptions(ctx, c, s)
	if err != nil {
		return false, err
	}
	objs, err := build.Build(root, s.Spec.Path, opts)
	if err != nil {
		return false, fmt.Errorf("build failed: %w", err)
	}
	if err := apply.Normalize(c.RESTMapper(), objs, s.Namespace, s.Spec.TargetNamespace); err != nil {
		return false, err
	}
	writer := c
	if user := inputs.ServiceAccountUser(s, ""); user != "" {
		if writer, err = client.New(inputs.Impersonating(cfg, user), client.Options{Scheme: scheme.New(), Mapper: c.RESTMapper()}); err != nil {
			return false, fmt.Errorf("cannot build a client for service account %s: %w", s.Spec.ServiceAccountName, err)
		}
	}
	owner := inputs.Owner(s)
	var created, changed, unchanged int
	var refused []string
	current := make([]apply.Entry, 0, len(objs))
	for _, o := range objs {
		e := apply.EntryOf(o)
		current = append(current, e)
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		err := c.Get(ctx, client.ObjectKey{Namespace: e.Namespace, Name: e.Name}, live)
		if err != nil && !apierrors.IsNotFound(err) && !meta.IsNoMatchError(err) {
			return false, fmt.Errorf("cannot read %s: %w", e, err)
		}
		exists := err == nil
		if exists {
			if _, err := ownership.Decide(live, owner); err != nil {
				fmt.Fprintf(out, "! %s: %v\n", e, err)
				refused = append(refused, e.String())
				continue
			}
		}
		result := o.DeepCopy()
		if exists {
			keepGitRevision(live, result)
		}
		if err := dryRunResult(ctx, writer, result, owner); err != nil {
			if !exists && meta.IsNoMatchError(err) {
				fmt.Fprintf(out, "+ %s (its kind is defined in this build)\n", e)
				created++
				continue
			}
			return false, fmt.Errorf("dry-run apply of %s failed: %w", e, err)
		}
		if !exists {
			fmt.Fprintf(out, "+ %s\n", e)
			created++
			continue
		}
		before, after := comparable(live.Object), comparable(result.Object)
		if isSecret(o) {
			maskSecretValues(before, after)
		}
		lines := fieldDiff(before, after)
		if len(lines) == 0 {
			unchanged++
			continue
		}
		changed++
		fmt.Fprintf(out, "~ %s\n", e)
		for _, l := range lines {
			fmt.Fprintf(out, "    %s\n", l)
		}
	}
	pruned := 0
	if s.Spec.Prune != gitopsv1.PruneDisabled {
		stale := apply.Diff(inputs.Inventory(s.Status.Inventory), current)
		if len(current) == 0 && len(stale) > 0 && s.Spec.Prune != gitopsv1.PruneAllowEmpty {
			return false, fmt.Errorf("the build has no objects; the Sync refuses to prune its %d applied objects (set prune: allowEmpty to allow it)", len(stale))
		}
		applier := &apply.Applier{Client: writer, DryRun: true, Owner: owner}
		res, err := applier.Prune(ctx, stale)
		if err != nil {
			return false, err
		}
		for _, p := range res {
			if p.Deleted {
				fmt.Fprintf(out, "- %s\n", p.Entry)
				pruned++
			} else if p.Reason != "already gone" {
				fmt.Fprintf(out, "  %s kept (%s)\n", p.Entry, p.Reason)
			}
		}
	}
	fmt.Fprintf(out, "%d to create, %d to change, %d to prune, %d unchanged\n", created, changed, pruned, unchanged)
	if len(refused) > 0 {
		return false, fmt.Errorf("the Sync would be refused on %d objects another writer owns: %s", len(refused), strings.Join(refused, ", "))
	}
	return created+changed+pruned > 0, nil
}

// keepGitRevision carries the Git revision a Sync wrote on a Deployment that
// a Rollout rolls out (bookkeeping the controller sets at apply time, see
// internal/gitops/controller) over to the object to compare, so it is not
// reported as a change.
func keepGitRevision(live, o *unstructured.Unstructured) {
	v, ok := live.GetAnnotations()[deliveryv1.GitRevisionAnnotation]
	if !ok || o.GroupVersionKind().GroupKind() != (schema.GroupKind{Group: "apps", Kind: "Deployment"}) {
		return
	}
	ann := o.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	if _, set := ann[deliveryv1.GitRevisionAnnotation]; !set {
		ann[deliveryv1.GitRevisionAnnotation] = v
		o.SetAnnotations(ann)
	}
}

// dryRunResult applies o with dryRun=All as the Sync's controller would: its
// ownership labels and its own field manager.
func dryRunResult(ctx context.Context, c client.Client, o *unstructured.Unstructured, owner ownership.Owner) error {
	owner.SetMark(o)
	delete(o.Object, "status")
	return c.Patch(ctx, o, client.Apply, client.ForceOwnership, client.FieldOwner(owner.FieldManager()), client.DryRunAll) //nolint:staticcheck // unstructured SSA
}

// Masks kubectl diff shows instead of a Secret's values.
const (
	maskValue  = "***"
	maskBefore = "*** (before)"
	maskAfter  = "*** (after)"
)

// lastApplied is kubectl's annotation holding a copy of what it applied,
// Secret values included.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

func isSecret(o *unstructured.Unstructured) bool {
	gvk := o.GroupVersionKind()
	return gvk.Group == "" && gvk.Kind == "Secret"
}

// maskSecretValues replaces the values of a Secret's data and stringData
// keys (live before, want after) the way kubectl diff does: "***" where a key
// is on one side only or the same on both, "*** (before)" and "*** (after)"
// where it differs, so a change shows without its value. kubectl's
// last-applied annotation, which copies the values, is masked the same way.
func maskSecretValues(before, after map[string]any) {
	all := func(string) bool { return true }
	for _, field := range []string{"data", "stringData"} {
		from, _ := before[field].(map[string]any)
		to, _ := after[field].(map[string]any)
		maskMaps(from, to, all)
	}
	annotations := func(m map[string]any) map[string]any {
		md, _ := m["metadata"].(map[string]any)
		a, _ := md["annotations"].(map[string]any)
		return a
	}
	maskMaps(annotations(before), annotations(after), func(k string) bool { return k == lastApplied })
}

// maskMaps masks the values of the keys masked selects in from and to (kubectl
// diff's rule; see maskSecretValues).
func maskMaps(from, to map[string]any, masked func(string) bool) {
	for k, v := range from {
		if !masked(k) {
			continue
		}
		if w, ok := to[k]; ok {
			if !reflect.DeepEqual(v, w) {
				from[k], to[k] = maskBefore, maskAfter
				continue
			}
			to[k] = maskValue
		}
		from[k] = maskValue
	}
	for k := range to {
		if _, ok := from[k]; masked(k) && !ok {
			to[k] = maskValue
		}
	}
}

// comparable drops fields that change on every write.
func comparable(m map[string]any) map[string]any {
	c := deepCopyMap(m)
	delete(c, "status")
	if md, ok := c["metadata"].(map[string]any); ok {
		for _, k := range []string{"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp"} {
			delete(md, k)
		}
	}
	return c
}

func deepCopyMap(m map[string]any) map[string]any {
	return (&unstructured.Unstructured{Object: m}).DeepCopy().Object
}

// fieldDiff lists changed leaf fields as "path: old -> new".
func fieldDiff(live, want map[string]any) []string {
	a, b := map[string]string{}, map[string]string{}
	flatten("", live, a)
	flatten("", want, b)
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		va, okA := a[k]
		vb, okB := b[k]
		switch {
		case okA && okB && va != vb:
			out = append(out, fmt.Sprintf("%s: %s -> %s", k, va, vb))
		case okA && !okB:
			out = append(out, fmt.Sprintf("%s: %s -> (removed)", k, va))
		case !okA && okB:
			out = append(out, fmt.Sprintf("%s: (none) -> %s", k, vb))
		}
	}
	sort.Strings(out)
	return out
}

func flatten(prefix string, v any, out map[string]string) {
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 0 && prefix != "" {
			out[prefix] = "{}"
		}
		for k, x := range t {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flatten(p, x, out)
		}
	case []any:
		if len(t) == 0 {
			out[prefix] = "[]"
		}
		for i, x := range t {
			flatten(fmt.Sprintf("%s[%d]", prefix, i), x, out)
		}
	default:
		b, _ := json.Marshal(t)
		out[prefix] = string(b)
	}
}

// checkoutSource clones the Sync's GitRepository at its current revision
// (or its ref when it has none yet) into a temporary folder.
func checkoutSource(ctx context.Context, c client.Client, s *gitopsv1.Sync) (string, func(), error) {
	key := inputs.SourceRef(s)
	repo := &gitopsv1.GitRepository{}
	if err := c.Get(ctx, key, repo); err != nil {
		return "", nil, fmt.Errorf("cannot read GitRepository %s: %w", key, err)
	}
	auth, err := inputs.GitAuth(ctx, c, repo)
	if err != nil {
		return "", nil, fmt.Errorf("GitRepository %s: %w", key, err)
	}
	ref := source.Ref{}
	if r := repo.Spec.Ref; r != nil {
		ref = source.Ref{Branch: r.Branch, Tag: r.Tag, SemVer: r.SemVer, Commit: r.Commit}
	}
	resolved, err := source.Resolve(ctx, repo.Spec.URL, ref, auth)
	if err != nil {
		return "", nil, err
	}
	if a := repo.Status.Artifact; a != nil {
		if _, hash, ok := strings.Cut(a.Revision, "sha1:"); ok {
			resolved.Hash, resolved.Pinned = hash, true
		}
	}
	dir, err := os.MkdirTemp("", "strata-diff-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	if _, err := source.Checkout(ctx, repo.Spec.URL, resolved, auth, filepath.Join(dir, "src")); err != nil {
		cleanup()
		return "", nil, err
	}
	return filepath.Join(dir, "src"), cleanup, nil
}

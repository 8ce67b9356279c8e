package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/gitops/apply"
	"github.com/strata-dev/strata/internal/gitops/build"
	gitopscontroller "github.com/strata-dev/strata/internal/gitops/controller"
	"github.com/strata-dev/strata/internal/gitops/source"
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
and pruned. Nothing is written.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, name, ok := strings.Cut(args[0], "/")
			if !ok || !strings.EqualFold(kind, "sync") || name == "" {
				return fmt.Errorf("argument must be sync/NAME, got %q", args[0])
			}
			cfg, err := ctrl.GetConfig()
			if err != nil {
				return fmt.Errorf("cannot load kubeconfig: %w", err)
			}
			if namespace == "" {
				namespace = "default"
			}
			return runDiff(cmd.Context(), cmd.OutOrStdout(), cfg, namespace, name, localPath)
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace of the Sync (default \"default\")")
	cmd.Flags().StringVar(&localPath, "path", "", "local working tree (repository top folder) to build instead of the fetched revision")
	return cmd
}

func runDiff(ctx context.Context, out io.Writer, cfg *rest.Config, ns, name, localPath string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return fmt.Errorf("cannot build client: %w", err)
	}
	s := &gitopsv1.Sync{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
		return fmt.Errorf("cannot read Sync %s/%s: %w", ns, name, err)
	}
	root := localPath
	if root == "" {
		dir, cleanup, err := checkoutSource(ctx, c, s)
		if err != nil {
			return err
		}
		defer cleanup()
		root = dir
	}
	opts, err := gitopscontroller.BuildOptions(ctx, c, s)
	if err != nil {
		return err
	}
	objs, err := build.Build(root, s.Spec.Path, opts)
	if err != nil {
		return fmt.Errorf("build failed: %w", err)
	}
	if err := apply.Normalize(c.RESTMapper(), objs, s.Namespace, s.Spec.TargetNamespace); err != nil {
		return err
	}
	writer := c
	if sa := s.Spec.ServiceAccountName; sa != "" {
		icfg := rest.CopyConfig(cfg)
		icfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + s.Namespace + ":" + sa}
		if writer, err = client.New(icfg, client.Options{Scheme: scheme.New(), Mapper: c.RESTMapper()}); err != nil {
			return fmt.Errorf("cannot build client: %w", err)
		}
	}
	applier := &apply.Applier{Client: writer, DryRun: true, Workers: 4,
		Labels: map[string]string{gitopscontroller.LabelSyncName: s.Name, gitopscontroller.LabelSyncNamespace: s.Namespace}}
	var created, changed, unchanged int
	current := make([]apply.Entry, 0, len(objs))
	for _, o := range objs {
		e := apply.EntryOf(o)
		current = append(current, e)
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		err := c.Get(ctx, client.ObjectKey{Namespace: e.Namespace, Name: e.Name}, live)
		if err != nil && !apierrors.IsNotFound(err) && !meta.IsNoMatchError(err) {
			return fmt.Errorf("cannot read %s: %w", e, err)
		}
		exists := err == nil
		result := o.DeepCopy()
		if err := dryRunResult(ctx, writer, result, applier.Labels); err != nil {
			if !exists && meta.IsNoMatchError(err) {
				fmt.Fprintf(out, "+ %s (its kind is defined in this build)\n", e)
				created++
				continue
			}
			return fmt.Errorf("dry-run apply of %s failed: %w", e, err)
		}
		if !exists {
			fmt.Fprintf(out, "+ %s\n", e)
			created++
			continue
		}
		lines := fieldDiff(comparable(live.Object), comparable(result.Object))
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
		var old []apply.Entry
		for _, e := range s.Status.Inventory {
			old = append(old, apply.Entry{APIVersion: e.APIVersion, Kind: e.Kind, Namespace: e.Namespace, Name: e.Name})
		}
		res, err := applier.Prune(ctx, apply.Diff(old, current))
		if err != nil {
			return err
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
	return nil
}

func dryRunResult(ctx context.Context, c client.Client, o *unstructured.Unstructured, labels map[string]string) error {
	l := o.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	for k, v := range labels {
		l[k] = v
	}
	o.SetLabels(l)
	delete(o.Object, "status")
	return c.Patch(ctx, o, client.Apply, client.ForceOwnership, client.FieldOwner("strata"), client.DryRunAll) //nolint:staticcheck // unstructured SSA
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
	ns := s.Spec.SourceRef.Namespace
	if ns == "" {
		ns = s.Namespace
	}
	repo := &gitopsv1.GitRepository{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: s.Spec.SourceRef.Name}, repo); err != nil {
		return "", nil, fmt.Errorf("cannot read GitRepository %s/%s: %w", ns, s.Spec.SourceRef.Name, err)
	}
	var auth source.Auth
	if repo.Spec.SecretRef != nil {
		sec := &corev1.Secret{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: repo.Spec.SecretRef.Name}, sec); err != nil {
			return "", nil, fmt.Errorf("cannot read the GitRepository's secret: %w", err)
		}
		auth = source.Auth{Username: string(sec.Data["username"]), Password: string(sec.Data["password"]),
			BearerToken: string(sec.Data["bearerToken"]), Identity: sec.Data["identity"], KnownHosts: sec.Data["known_hosts"]}
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

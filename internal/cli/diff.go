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
	"text/tabwriter"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/gitops/apply"
	"github.com/strata-dev/strata/internal/gitops/build"
	"github.com/strata-dev/strata/internal/gitops/inputs"
	"github.com/strata-dev/strata/internal/gitops/source"
	"github.com/strata-dev/strata/internal/kit/health"
	"github.com/strata-dev/strata/internal/kit/ownership"
	"github.com/strata-dev/strata/internal/kit/ssa"
	"github.com/strata-dev/strata/internal/scheme"
)

func init() { extraCommands = append(extraCommands, newDiffCommand) }

func newDiffCommand() *cobra.Command {
	var localPath, output string
	var cf *clusterFlags
	cmd := &cobra.Command{
		Use:   "diff sync/NAME",
		Short: "Show what a Sync would create, change and prune",
		Long: `diff builds a Sync's path exactly as the controller would — from a local
working tree with --path (the repository's top folder), else from the
GitRepository's current revision — and shows, by server-side dry-run against
the cluster in KUBECONFIG, what would be created, changed (field by field)
and pruned. Nothing is written. The values of Secrets are masked as kubectl
diff masks them: "***", or "*** (before)" and "*** (after)" when they change.

-o json|yaml prints a SyncDiff document (docs/cli.md), -o name the objects
that would be created, changed or pruned (kind.group/name), -o wide a table
of every action with the changed fields.

Exit status: 0 when nothing would change, 1 when something would, above 1
on an error (2).`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &ExitError{Code: 2, Err: fmt.Errorf("diff takes one argument, sync/NAME, got %d", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutputFormat(output, outputFormats...); err != nil {
				return err
			}
			kind, name, ok := strings.Cut(args[0], "/")
			if !ok || !isSyncKind(kind) || name == "" {
				return &ExitError{Code: 2, Err: fmt.Errorf("argument must be sync/NAME, got %q", args[0])}
			}
			cfg, err := cf.config()
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			d, err := computeDiff(cmd.Context(), cfg, cf.ns(), name, localPath)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if err := printDiff(cmd.OutOrStdout(), d, output); err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if refused := d.refused(); len(refused) > 0 {
				return &ExitError{Code: 2, Err: fmt.Errorf("the Sync would be refused on %d objects another writer owns: %s", len(refused), strings.Join(refused, ", "))}
			}
			if d.Summary.Create+d.Summary.Change+d.Summary.Prune > 0 {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &ExitError{Code: 2, Err: err} })
	cf = addClusterFlags(cmd, false)
	cmd.ValidArgsFunction = completeRef(cf)
	addOutputFlag(cmd, &output)
	cmd.Flags().StringVar(&localPath, "path", "", "local working tree (repository top folder) to build instead of the fetched revision")
	return cmd
}

// isSyncKind says whether kind, as a user types it, names a Sync (sync,
// syncs, Sync, sync.gitops.strata.dev as -o name prints it).
func isSyncKind(kind string) bool {
	k := strings.ToLower(kind)
	return k == "sync" || k == "syncs" || k == "sync.gitops.strata.dev" || k == "syncs.gitops.strata.dev"
}

// Actions of a SyncDiff's changes.
const (
	diffCreate = "Create"
	diffChange = "Change"
	diffPrune  = "Prune"
	// diffKeep: a stale object the Sync would not prune (reason says why).
	diffKeep = "Keep"
	// diffRefuse: an object another writer owns; the Sync would be refused.
	diffRefuse = "Refuse"
)

// syncDiff is what `strata diff` finds, and the document -o json|yaml
// prints (kind SyncDiff, docs/cli.md). Unchanged objects are only counted.
type syncDiff struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Sync       objectRef      `json:"sync"`
	Changes    []objectChange `json:"changes"`
	// NotReady are the objects of the build that exist and are not ready
	// now, read by kit/health as the Sync controller reads them.
	NotReady []objectHealth `json:"notReady,omitempty"`
	Summary  diffSummary    `json:"summary"`
}

// objectHealth is an object that is not ready: its kstatus status
// (InProgress, Failed...) and why.
type objectHealth struct {
	objectRef
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// objectRef names one object.
type objectRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

func refOf(e apply.Entry) objectRef {
	return objectRef{APIVersion: e.APIVersion, Kind: e.Kind, Namespace: e.Namespace, Name: e.Name}
}

func (r objectRef) entry() apply.Entry {
	return apply.Entry{APIVersion: r.APIVersion, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
}

// objectChange is one object diff would act on.
type objectChange struct {
	Action string `json:"action"`
	objectRef
	// Fields are the changed fields of a Change, Secret values masked.
	Fields []fieldChange `json:"fields,omitempty"`
	// Reason explains a Keep or Refuse, or a Create whose kind the build
	// itself defines.
	Reason string `json:"reason,omitempty"`
}

// fieldChange is one changed leaf field: before is absent for an added
// field, after for a removed one.
type fieldChange struct {
	Path   string          `json:"path"`
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
}

type diffSummary struct {
	Create    int `json:"create"`
	Change    int `json:"change"`
	Prune     int `json:"prune"`
	Unchanged int `json:"unchanged"`
	NotReady  int `json:"notReady"`
}

func (d *syncDiff) refused() []string {
	var out []string
	for _, c := range d.Changes {
		if c.Action == diffRefuse {
			out = append(out, c.entry().String())
		}
	}
	return out
}

// runDiff prints what applying the Sync ns/name would do, in the default
// format, and reports whether anything would be created, changed or pruned.
func runDiff(ctx context.Context, out io.Writer, cfg *rest.Config, ns, name, localPath string) (bool, error) {
	d, err := computeDiff(ctx, cfg, ns, name, localPath)
	if err != nil {
		return false, err
	}
	if err := printDiff(out, d, ""); err != nil {
		return false, err
	}
	if refused := d.refused(); len(refused) > 0 {
		return false, fmt.Errorf("the Sync would be refused on %d objects another writer owns: %s", len(refused), strings.Join(refused, ", "))
	}
	return d.Summary.Create+d.Summary.Change+d.Summary.Prune > 0, nil
}

// computeDiff works out what applying the Sync ns/name would do. It reads
// what it needs the way the Sync controller does (package inputs): build
// options, identity, owner and field manager, inventory.
func computeDiff(ctx context.Context, cfg *rest.Config, ns, name, localPath string) (*syncDiff, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, fmt.Errorf("cannot build client: %w", err)
	}
	s := &gitopsv1.Sync{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
		return nil, fmt.Errorf("cannot read Sync %s/%s: %w", ns, name, err)
	}
	d := &syncDiff{APIVersion: cliAPIVersion, Kind: "SyncDiff", Changes: []objectChange{},
		Sync: objectRef{APIVersion: gitopsv1.GroupVersion.String(), Kind: "Sync", Namespace: ns, Name: name}}
	root := localPath
	if root == "" {
		dir, cleanup, err := checkoutSource(ctx, c, s)
		if err != nil {
			return nil, err
		}
		defer cleanup()
		root = dir
	} else if _, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("cannot read the working tree: %w", err)
	}
	opts, err := inputs.BuildOptions(ctx, c, s)
	if err != nil {
		return nil, err
	}
	objs, err := build.Build(root, s.Spec.Path, opts)
	if err != nil {
		return nil, fmt.Errorf("build failed: %w", err)
	}
	if err := apply.Normalize(c.RESTMapper(), objs, s.Namespace, s.Spec.TargetNamespace); err != nil {
		return nil, err
	}
	writer := c
	if user := inputs.ServiceAccountUser(s, ""); user != "" {
		if writer, err = client.New(inputs.Impersonating(cfg, user), client.Options{Scheme: scheme.New(), Mapper: c.RESTMapper()}); err != nil {
			return nil, fmt.Errorf("cannot build a client for service account %s: %w", s.Spec.ServiceAccountName, err)
		}
	}
	owner := inputs.Owner(s)
	current := make([]apply.Entry, 0, len(objs))
	for _, o := range objs {
		e := apply.EntryOf(o)
		current = append(current, e)
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		err := c.Get(ctx, client.ObjectKey{Namespace: e.Namespace, Name: e.Name}, live)
		if err != nil && !apierrors.IsNotFound(err) && !meta.IsNoMatchError(err) {
			return nil, fmt.Errorf("cannot read %s: %w", e, err)
		}
		exists := err == nil
		if exists {
			if _, err := ownership.Decide(live, owner); err != nil {
				d.Changes = append(d.Changes, objectChange{Action: diffRefuse, objectRef: refOf(e), Reason: err.Error()})
				continue
			}
		}
		if exists {
			if h, ok := healthOf(e, live); !ok {
				d.NotReady = append(d.NotReady, h)
				d.Summary.NotReady++
			}
		}
		result := o.DeepCopy()
		if exists {
			keepGitRevision(live, result)
			inputs.KeepRolloutFields(live, result)
		}
		if err := dryRunResult(ctx, writer, result, owner); err != nil {
			if !exists && meta.IsNoMatchError(err) {
				d.Changes = append(d.Changes, objectChange{Action: diffCreate, objectRef: refOf(e), Reason: "its kind is defined in this build"})
				d.Summary.Create++
				continue
			}
			return nil, fmt.Errorf("dry-run apply of %s failed: %w", e, err)
		}
		if !exists {
			d.Changes = append(d.Changes, objectChange{Action: diffCreate, objectRef: refOf(e)})
			d.Summary.Create++
			continue
		}
		before, after := comparable(live.Object), comparable(result.Object)
		if isSecret(o) {
			maskSecretValues(before, after)
		}
		fields := fieldChanges(before, after)
		if len(fields) == 0 {
			d.Summary.Unchanged++
			continue
		}
		d.Changes = append(d.Changes, objectChange{Action: diffChange, objectRef: refOf(e), Fields: fields})
		d.Summary.Change++
	}
	if len(d.refused()) > 0 {
		return d, nil
	}
	if s.Spec.Prune != gitopsv1.PruneDisabled {
		stale := apply.Diff(inputs.Inventory(s.Status.Inventory), current)
		if len(current) == 0 && len(stale) > 0 && s.Spec.Prune != gitopsv1.PruneAllowEmpty {
			return nil, fmt.Errorf("the build has no objects; the Sync refuses to prune its %d applied objects (set prune: allowEmpty to allow it)", len(stale))
		}
		applier := &apply.Applier{Client: writer, DryRun: true, Owner: owner}
		res, err := applier.Prune(ctx, stale)
		if err != nil {
			return nil, err
		}
		for _, p := range res {
			if p.Deleted {
				d.Changes = append(d.Changes, objectChange{Action: diffPrune, objectRef: refOf(p.Entry)})
				d.Summary.Prune++
			} else if p.Reason != "already gone" {
				d.Changes = append(d.Changes, objectChange{Action: diffKeep, objectRef: refOf(p.Entry), Reason: p.Reason})
			}
		}
	}
	return d, nil
}

// printDiff prints d: by default one line per object ("+ created",
// "~ changed" with its fields, "- pruned", "! refused", "  kept"), one per
// object not ready now ("? ...") and a summary line; json|yaml the SyncDiff document; name the objects that would
// be created, changed or pruned; wide a table of every action.
func printDiff(out io.Writer, d *syncDiff, format string) error {
	switch format {
	case "json", "yaml":
		return printStructured(out, format, d)
	case "name":
		for _, c := range d.Changes {
			if c.Action == diffCreate || c.Action == diffChange || c.Action == diffPrune {
				fmt.Fprintln(out, apiVersionKindName(c.APIVersion, c.Kind, c.Name))
			}
		}
		return nil
	case "wide":
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ACTION\tNAMESPACE\tNAME\tFIELDS\tREASON")
		for _, c := range d.Changes {
			var paths []string
			for _, f := range c.Fields {
				paths = append(paths, f.Path)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Action, dash(c.Namespace), apiVersionKindName(c.APIVersion, c.Kind, c.Name),
				dash(strings.Join(paths, ",")), dash(c.Reason))
		}
		return tw.Flush()
	}
	for _, c := range d.Changes {
		e := c.entry()
		switch c.Action {
		case diffCreate:
			if c.Reason != "" {
				fmt.Fprintf(out, "+ %s (%s)\n", e, c.Reason)
			} else {
				fmt.Fprintf(out, "+ %s\n", e)
			}
		case diffChange:
			fmt.Fprintf(out, "~ %s\n", e)
			for _, l := range formatFieldChanges(c.Fields) {
				fmt.Fprintf(out, "    %s\n", l)
			}
		case diffPrune:
			fmt.Fprintf(out, "- %s\n", e)
		case diffKeep:
			fmt.Fprintf(out, "  %s kept (%s)\n", e, c.Reason)
		case diffRefuse:
			fmt.Fprintf(out, "! %s: %s\n", e, c.Reason)
		}
	}
	for _, n := range d.NotReady {
		fmt.Fprintf(out, "? %s\n", n.note())
	}
	summary := fmt.Sprintf("%d to create, %d to change, %d to prune, %d unchanged", d.Summary.Create, d.Summary.Change, d.Summary.Prune, d.Summary.Unchanged)
	if d.Summary.NotReady > 0 {
		summary += fmt.Sprintf(", %d not ready now", d.Summary.NotReady)
	}
	_, err := fmt.Fprintln(out, summary)
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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
// ownership labels and its own field manager, through the kit's apply.
func dryRunResult(ctx context.Context, c client.Client, o *unstructured.Unstructured, owner ownership.Owner) error {
	owner.SetMark(o)
	delete(o.Object, "status")
	return ssa.Apply(ctx, c, o, ssa.Options{FieldManager: owner.FieldManager(), Policy: ssa.Force, DryRun: true})
}

// healthOf reads live's health with the evaluator the Sync controller and
// trace use (kit/health); ok is true for a ready object.
func healthOf(e apply.Entry, live *unstructured.Unstructured) (objectHealth, bool) {
	h := health.Compute(live)
	return objectHealth{objectRef: refOf(e), Status: string(h.Status), Message: h.Message}, h.Ready()
}

// note says why an object is not ready: "Deployment/ns/web InProgress: ...".
func (n objectHealth) note() string {
	s := fmt.Sprintf("%s %s", n.entry(), n.Status)
	if n.Message != "" {
		s += ": " + n.Message
	}
	return s
}

// healthNote is healthOf as a note ("" and true for a ready object).
func healthNote(e apply.Entry, live *unstructured.Unstructured) (string, bool) {
	h, ok := healthOf(e, live)
	if ok {
		return "", true
	}
	return h.note(), false
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
	fields := fieldChanges(live, want)
	if len(fields) == 0 {
		return nil
	}
	out := formatFieldChanges(fields)
	sort.Strings(out)
	return out
}

// formatFieldChanges writes changes as "path: old -> new" with JSON values,
// "(none)" for an added and "(removed)" for a removed field.
func formatFieldChanges(fields []fieldChange) []string {
	out := make([]string, 0, len(fields))
	for _, f := range fields {
		before, after := "(none)", "(removed)"
		if f.Before != nil {
			before = string(f.Before)
		}
		if f.After != nil {
			after = string(f.After)
		}
		out = append(out, fmt.Sprintf("%s: %s -> %s", f.Path, before, after))
	}
	return out
}

// fieldChanges lists changed leaf fields, sorted by path.
func fieldChanges(live, want map[string]any) []fieldChange {
	a, b := map[string]json.RawMessage{}, map[string]json.RawMessage{}
	flatten("", live, a)
	flatten("", want, b)
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var out []fieldChange
	for k := range keys {
		va, okA := a[k]
		vb, okB := b[k]
		switch {
		case okA && okB && string(va) != string(vb):
			out = append(out, fieldChange{Path: k, Before: va, After: vb})
		case okA && !okB:
			out = append(out, fieldChange{Path: k, Before: va})
		case !okA && okB:
			out = append(out, fieldChange{Path: k, After: vb})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// flatten maps the path of every leaf of v ("spec.ports[0].port") to its
// value in JSON; an empty map or list is a leaf ({} or []).
func flatten(prefix string, v any, out map[string]json.RawMessage) {
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 0 && prefix != "" {
			out[prefix] = json.RawMessage("{}")
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
			out[prefix] = json.RawMessage("[]")
		}
		for i, x := range t {
			flatten(fmt.Sprintf("%s[%d]", prefix, i), x, out)
		}
	default:
		b, _ := json.Marshal(t)
		out[prefix] = b
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

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/strata-dev/strata/internal/kit/health"
)

func init() { extraCommands = append(extraCommands, newTraceCommand) }

// traceNode is one object of a trace tree.
type traceNode struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Namespace  string       `json:"namespace,omitempty"`
	Name       string       `json:"name"`
	Synced     string       `json:"synced"`
	Ready      string       `json:"ready"`
	Reason     string       `json:"reason,omitempty"`
	Message    string       `json:"message,omitempty"`
	Children   []*traceNode `json:"children,omitempty"`
}

func newTraceCommand() *cobra.Command {
	var output string
	var watch bool
	var cf *clusterFlags
	cmd := &cobra.Command{
		Use:   "trace KIND/NAME",
		Short: "Print a claim or composite resource and everything it composes",
		Long: `trace prints the tree claim -> composite resource -> composed resources
(a Sync -> what it applied) with SYNCED, READY and the message of each.
For externalsecret/NAME it prints store -> ExternalSecret -> Secret ->
the workloads that use the Secret (never the Secret's data).

-o wide adds REASON and namespaces, -o json|yaml prints the tree as a
document (docs/cli.md), -o name one kind.group/name line per object.

--watch (-w) watches every object of the tree and prints the tree again
when it changes: on a terminal it redraws in place; otherwise (a pipe, a
file) it prints each new tree after the last one (a blank line between
tables, "---" between YAML documents, JSON documents one after another),
and only when the tree changed. Ctrl-C ends it (exit 0).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutputFormat(output, outputFormats...); err != nil {
				return err
			}
			kind, name, err := splitRef(args[0])
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			k, err := newKube(cf)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			t := &tracer{mapper: k.mapper, dyn: k.dyn}
			out := cmd.OutOrStdout()
			if !watch {
				root, err := t.trace(cmd.Context(), kind, cf.ns(), name)
				if err != nil {
					return &ExitError{Code: 2, Err: err}
				}
				return printTrace(out, root, output)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := watchTrace(ctx, t, kind, cf.ns(), name, out, cmd.ErrOrStderr(), output, isTerminal(out)); err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			return nil
		},
	}
	cf = addClusterFlags(cmd, false)
	cmd.ValidArgsFunction = completeRef(cf)
	addOutputFlag(cmd, &output)
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "watch the objects of the tree and print it again when it changes")
	return cmd
}

type tracer struct {
	mapper meta.RESTMapper
	dyn    dynamic.Interface
	// targets are the objects (and lists) the last trace read: what
	// --watch watches.
	targets map[watchTarget]bool
}

// watchTarget is an object a trace read, or with name "" a collection it
// listed.
type watchTarget struct {
	gvr       schema.GroupVersionResource
	namespace string
	name      string
}

func (t *tracer) read(gvr schema.GroupVersionResource, ns, name string) {
	if t.targets == nil {
		t.targets = map[watchTarget]bool{}
	}
	t.targets[watchTarget{gvr: gvr, namespace: ns, name: name}] = true
}

func (t *tracer) trace(ctx context.Context, kind, ns, name string) (*traceNode, error) {
	t.targets = map[watchTarget]bool{}
	// kind as users type it: sync, syncs, Sync, sync.gitops.strata.dev.
	want := schema.ParseGroupResource(strings.ToLower(kind)).WithVersion("")
	gvr, err := t.mapper.ResourceFor(want)
	if err != nil {
		gvk, kerr := t.mapper.KindFor(want)
		if kerr != nil {
			return nil, fmt.Errorf("unknown kind %q: %w", kind, err)
		}
		m, merr := t.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if merr != nil {
			return nil, merr
		}
		gvr = m.Resource
	}
	gvk, err := t.mapper.KindFor(gvr)
	if err != nil {
		return nil, err
	}
	if isExternalSecret(gvk) {
		return t.traceExternalSecret(ctx, ns, name)
	}
	return t.node(ctx, gvk, ns, name, 0)
}

func (t *tracer) node(ctx context.Context, gvk schema.GroupVersionKind, ns, name string, depth int) (*traceNode, error) {
	n := &traceNode{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Namespace: ns, Name: name, Synced: "-", Ready: "-"}
	m, err := t.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		n.Message = err.Error()
		return n, nil
	}
	var ri dynamic.ResourceInterface = t.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ri = t.dyn.Resource(m.Resource).Namespace(ns)
	} else {
		n.Namespace = ""
	}
	t.read(m.Resource, n.Namespace, name)
	u, err := ri.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if depth == 0 {
			return nil, fmt.Errorf("cannot get %s %s: %w", gvk.Kind, name, err)
		}
		n.Ready, n.Message = "False", "not found"
		return n, nil
	}
	fillStatus(n, u)
	if depth > 4 {
		return n, nil
	}
	// A claim points at its XR; an XR lists its composed resources.
	// (status.resourceRef since 2026-12; spec.resourceRef when the user
	// chose the XR, or an earlier Strata recorded it.)
	ref, _, _ := unstructured.NestedStringMap(u.Object, "status", "resourceRef")
	if r, ok, _ := unstructured.NestedStringMap(u.Object, "spec", "resourceRef"); ok && r["name"] != "" {
		ref = r
	}
	if ref["name"] != "" {
		gv, _ := schema.ParseGroupVersion(ref["apiVersion"])
		c, err := t.node(ctx, gv.WithKind(ref["kind"]), "", ref["name"], depth+1)
		if err != nil {
			return nil, err
		}
		n.Children = append(n.Children, c)
	}
	refs, _, _ := unstructured.NestedSlice(u.Object, "status", "resourceRefs")
	// A Sync lists what it applied in status.inventory, in the same shape.
	inv, _, _ := unstructured.NestedSlice(u.Object, "status", "inventory")
	refs = append(refs, inv...)
	// A verified Sync names the AnalysisRun of its last verification.
	if run, _, _ := unstructured.NestedString(u.Object, "status", "verification", "runName"); run != "" {
		refs = append(refs, map[string]any{"apiVersion": "delivery.strata.dev/v1alpha1", "kind": "AnalysisRun", "name": run, "namespace": u.GetNamespace()})
	}
	for _, r := range refs {
		rm, _ := r.(map[string]any)
		av, _ := rm["apiVersion"].(string)
		k, _ := rm["kind"].(string)
		nm, _ := rm["name"].(string)
		rns, _ := rm["namespace"].(string)
		gv, _ := schema.ParseGroupVersion(av)
		c, err := t.node(ctx, gv.WithKind(k), rns, nm, depth+1)
		if err != nil {
			return nil, err
		}
		n.Children = append(n.Children, c)
	}
	return n, nil
}

// fillStatus sets SYNCED from the Synced condition and READY from
// kit/health, the evaluator the controllers use, so every kind (a
// ConfigMap or Deployment of a Sync, a composed resource, a claim) reads as
// it does for the controllers.
func fillStatus(n *traceNode, u *unstructured.Unstructured) {
	var ready map[string]any
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		switch m["type"] {
		case "Synced":
			status, _ := m["status"].(string)
			n.Synced = status
			if status != "True" {
				n.Reason, _ = m["reason"].(string)
				n.Message, _ = m["message"].(string)
			}
		case "Ready":
			ready = m
		}
	}
	h := health.Compute(u)
	reason, _ := ready["reason"].(string)
	if h.Ready() {
		n.Ready = "True"
		if n.Message == "" {
			n.Reason, n.Message = reason, h.Message
		}
		return
	}
	n.Ready = "False"
	if reason == "" || ready["status"] == "True" {
		reason = string(h.Status)
	}
	n.Reason, n.Message = reason, h.Message
}

// printTrace prints a trace tree: a table (wide: with REASON and
// namespaces), the tree as a JSON or YAML document, or one kubectl-style
// name per object (name).
func printTrace(out io.Writer, root *traceNode, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(root)
	case "yaml":
		return printStructured(out, format, root)
	case "name":
		var walk func(n *traceNode)
		walk = func(n *traceNode) {
			fmt.Fprintln(out, apiVersionKindName(n.APIVersion, n.Kind, n.Name))
			for _, c := range n.Children {
				walk(c)
			}
		}
		walk(root)
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if format == "wide" {
		fmt.Fprintln(w, "NAME\tSYNCED\tREADY\tREASON\tSTATUS")
	} else {
		fmt.Fprintln(w, "NAME\tSYNCED\tREADY\tSTATUS")
	}
	var walk func(n *traceNode, prefix, childPrefix string)
	walk = func(n *traceNode, prefix, childPrefix string) {
		name := n.Kind + "/" + n.Name
		if n.Namespace != "" && format == "wide" {
			name += " (" + n.Namespace + ")"
		}
		msg := n.Message
		if format != "wide" && len(msg) > 80 {
			msg = msg[:77] + "..."
		}
		if format == "wide" {
			fmt.Fprintf(w, "%s%s\t%s\t%s\t%s\t%s\n", prefix, name, n.Synced, n.Ready, n.Reason, msg)
		} else {
			fmt.Fprintf(w, "%s%s\t%s\t%s\t%s\n", prefix, name, n.Synced, n.Ready, msg)
		}
		for i, c := range n.Children {
			if i == len(n.Children)-1 {
				walk(c, childPrefix+"└─ ", childPrefix+"   ")
			} else {
				walk(c, childPrefix+"├─ ", childPrefix+"│  ")
			}
		}
	}
	walk(root, "", "")
	return w.Flush()
}

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"

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
	var namespace, output, kubeconfig string
	var watch bool
	cmd := &cobra.Command{
		Use:   "trace KIND/NAME",
		Short: "Print a claim or composite resource and everything it composes",
		Long: `trace prints the tree claim -> composite resource -> composed resources with
SYNCED, READY and the message of each, reading the cluster in KUBECONFIG.
For externalsecret/NAME it prints store -> ExternalSecret -> Secret ->
the workloads that use the Secret (never the Secret's data).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, name, ok := strings.Cut(args[0], "/")
			if !ok || kind == "" || name == "" {
				return fmt.Errorf("argument must be KIND/NAME, got %q", args[0])
			}
			if output != "" && output != "wide" && output != "json" {
				return fmt.Errorf("unknown output format %q (want wide or json)", output)
			}
			cfg, err := ctrl.GetConfig()
			if kubeconfig != "" {
				cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
			}
			if err != nil {
				return fmt.Errorf("cannot load kubeconfig: %w", err)
			}
			dc, err := discovery.NewDiscoveryClientForConfig(cfg)
			if err != nil {
				return err
			}
			mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
			dyn, err := dynamic.NewForConfig(cfg)
			if err != nil {
				return err
			}
			t := &tracer{mapper: mapper, dyn: dyn}
			for {
				root, err := t.trace(cmd.Context(), kind, namespace, name)
				if err != nil {
					return err
				}
				if watch {
					fmt.Fprint(cmd.OutOrStdout(), "\033[H\033[2J")
				}
				if err := printTrace(cmd.OutOrStdout(), root, output); err != nil {
					return err
				}
				if !watch {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(2 * time.Second):
				}
			}
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "namespace of a claim")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: wide or json")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "print the tree again every 2s")
	return cmd
}

type tracer struct {
	mapper meta.RESTMapper
	dyn    dynamic.Interface
}

func (t *tracer) trace(ctx context.Context, kind, ns, name string) (*traceNode, error) {
	gvr, err := t.mapper.ResourceFor(schema.GroupVersionResource{Resource: strings.ToLower(kind)})
	if err != nil {
		gvk, kerr := t.mapper.KindFor(schema.GroupVersionResource{Resource: strings.ToLower(kind)})
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
	if ref, ok, _ := unstructured.NestedStringMap(u.Object, "spec", "resourceRef"); ok && ref["name"] != "" {
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

func printTrace(out io.Writer, root *traceNode, format string) error {
	if format == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(root)
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

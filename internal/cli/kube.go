package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
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
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"
)

// kube is what a cluster command needs: clients and a REST mapper that
// resolves the kinds users type (sync, syncs, Sync, gitrepository.gitops.strata.dev).
type kube struct {
	cfg    *rest.Config
	dyn    dynamic.Interface
	cs     kubernetes.Interface
	mapper meta.RESTMapper
}

func newKube(f *clusterFlags) (*kube, error) {
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	return newKubeFor(cfg)
}

func newKubeFor(cfg *rest.Config) (*kube, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot build discovery client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot build client: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot build client: %w", err)
	}
	mapper := restmapper.NewShortcutExpander(restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), dc, nil)
	return &kube{cfg: cfg, dyn: dyn, cs: cs, mapper: mapper}, nil
}

// mapping resolves a kind as a user types it.
func (k *kube) mapping(kind string) (*meta.RESTMapping, error) {
	gvr, err := k.mapper.ResourceFor(schema.ParseGroupResource(strings.ToLower(kind)).WithVersion(""))
	if err != nil {
		return nil, fmt.Errorf("unknown kind %q: %w", kind, err)
	}
	gvk, err := k.mapper.KindFor(gvr)
	if err != nil {
		return nil, fmt.Errorf("unknown kind %q: %w", kind, err)
	}
	return k.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
}

// resource is the client for m in namespace ns (ignored for cluster-scoped kinds).
func (k *kube) resource(m *meta.RESTMapping, ns string) dynamic.ResourceInterface {
	if m.Scope.Name() == meta.RESTScopeNameRoot {
		return k.dyn.Resource(m.Resource)
	}
	return k.dyn.Resource(m.Resource).Namespace(ns)
}

// get reads KIND/NAME.
func (k *kube) get(ctx context.Context, ref, ns string) (*unstructured.Unstructured, *meta.RESTMapping, error) {
	kind, name, err := splitRef(ref)
	if err != nil {
		return nil, nil, err
	}
	m, err := k.mapping(kind)
	if err != nil {
		return nil, nil, err
	}
	u, err := k.resource(m, ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("cannot get %s %s: %w", m.GroupVersionKind.Kind, name, err)
	}
	return u, m, nil
}

func splitRef(ref string) (kind, name string, err error) {
	kind, name, ok := strings.Cut(ref, "/")
	if !ok || kind == "" || name == "" {
		return "", "", fmt.Errorf("argument must be KIND/NAME, got %q", ref)
	}
	return kind, name, nil
}

// outputFormats are the -o values of commands that print objects.
var outputFormats = []string{"json", "yaml", "wide", "name"}

// addOutputFlag adds -o/--output with completion of its values.
func addOutputFlag(cmd *cobra.Command, p *string, formats ...string) {
	if len(formats) == 0 {
		formats = outputFormats
	}
	cmd.Flags().StringVarP(p, "output", "o", "", "output format: "+strings.Join(formats, "|"))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
}

func checkOutputFormat(o string, formats ...string) error {
	if o == "" {
		return nil
	}
	for _, f := range formats {
		if o == f {
			return nil
		}
	}
	return &ExitError{Code: 2, Err: fmt.Errorf("unknown output format %q (want %s)", o, strings.Join(formats, ", "))}
}

// printStructured writes v as JSON or YAML.
func printStructured(w io.Writer, format string, v any) error {
	switch format {
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return fmt.Errorf("unknown output format %q", format)
}

// printObjects prints objects as kubectl does for -o json|yaml|name
// (name: kind.group/name, see kubectlName) and as
// a table of NAMESPACE NAME READY STATUS (wide: + AGE) otherwise.
func printObjects(w io.Writer, format string, objs []*unstructured.Unstructured) error {
	switch format {
	case "json", "yaml":
		if len(objs) == 1 {
			return printStructured(w, format, objs[0].Object)
		}
		list := map[string]any{"apiVersion": "v1", "kind": "List", "items": []any{}}
		items := []any{}
		for _, o := range objs {
			items = append(items, o.Object)
		}
		list["items"] = items
		return printStructured(w, format, list)
	case "name":
		for _, o := range objs {
			fmt.Fprintln(w, kubectlName(o.GroupVersionKind(), o.GetName()))
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "NAMESPACE\tNAME\tREADY\tSTATUS"
	if format == "wide" {
		header += "\tAGE"
	}
	fmt.Fprintln(tw, header)
	for _, o := range objs {
		st, reason, msg := condition(o, "Ready")
		status := reason
		if msg != "" {
			status = reason + ": " + msg
		}
		line := fmt.Sprintf("%s\t%s/%s\t%s\t%s", o.GetNamespace(), strings.ToLower(o.GetKind()), o.GetName(), st, status)
		if format == "wide" {
			line += "\t" + time.Since(o.GetCreationTimestamp().Time).Round(time.Second).String()
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

// condition returns the status, reason and message of condition t.
func condition(u *unstructured.Unstructured, t string) (status, reason, message string) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != t {
			continue
		}
		s, _ := m["status"].(string)
		r, _ := m["reason"].(string)
		msg, _ := m["message"].(string)
		return s, r, msg
	}
	return "Unknown", "", ""
}

// completeNamespaces lists the cluster's namespaces for shell completion.
func completeNamespaces(ctx context.Context, f *clusterFlags) ([]string, cobra.ShellCompDirective) {
	if ctx == nil {
		ctx = context.Background()
	}
	k, err := newKube(f)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	list, err := k.cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, n := range list.Items {
		out = append(out, n.Name)
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completableKinds are the kinds completed before the slash of KIND/NAME.
var completableKinds = []string{"sync", "gitrepository", "compositeresourcedefinition", "composition", "environmentconfig"}

// completeRef completes KIND/NAME arguments from the cluster: kinds before
// the slash (Strata's kinds and every kind an XRD defines), names of
// existing objects in the namespace after it.
func completeRef(f *clusterFlags) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		k, err := newKube(f)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		kind, prefix, ok := strings.Cut(toComplete, "/")
		if !ok {
			kinds := append([]string(nil), completableKinds...)
			kinds = append(kinds, xrdKinds(ctx, k)...)
			var out []string
			for _, kd := range kinds {
				if strings.HasPrefix(kd, strings.ToLower(toComplete)) {
					out = append(out, kd+"/")
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
		}
		m, err := k.mapping(kind)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		list, err := k.resource(m, f.ns()).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, it := range list.Items {
			if strings.HasPrefix(it.GetName(), prefix) {
				out = append(out, kind+"/"+it.GetName())
			}
		}
		sort.Strings(out)
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// xrdKinds are the lower-case composite and claim kinds the cluster's XRDs define.
func xrdKinds(ctx context.Context, k *kube) []string {
	gvr := schema.GroupVersionResource{Group: "apiextensions.strata.dev", Version: "v1alpha1", Resource: "compositeresourcedefinitions"}
	list, err := k.dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil
	}
	var out []string
	for _, x := range list.Items {
		for _, path := range [][]string{{"spec", "names", "kind"}, {"spec", "claimNames", "kind"}} {
			if s, _, _ := unstructured.NestedString(x.Object, path...); s != "" {
				out = append(out, strings.ToLower(s))
			}
		}
	}
	return out
}

package manager_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/strata-dev/strata/internal/composition/controller"
	"github.com/strata-dev/strata/internal/kubeclient"
	"github.com/strata-dev/strata/internal/manager"
	"github.com/strata-dev/strata/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, &env, testenv.Start))
}

const xrdYAML = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: CompositeResourceDefinition
metadata: {name: xshards.shard.strata.dev}
spec:
  group: shard.strata.dev
  names: {kind: XShard, plural: xshards}
  claimNames: {kind: Shard, plural: shards}
  versions:
  - name: v1alpha1
    served: true
    referenceable: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              value: {type: string}
`

const compositionYAML = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: shards}
spec:
  compositeTypeRef: {apiVersion: shard.strata.dev/v1alpha1, kind: XShard}
  resources:
  - name: a
    template: {apiVersion: v1, kind: ConfigMap, data: {value: "${xr.spec.value}"}}
`

var claimGVK = schema.GroupVersionKind{Group: "shard.strata.dev", Version: "v1alpha1", Kind: "Shard"}

// startShard runs a manager with the composition subsystem for selector; its
// API requests carry the user agent name, which the API server records as
// the field manager of its status writes.
func startShard(t *testing.T, ctx context.Context, name, selector string) {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.UserAgent = name
	o := manager.DefaultOptions()
	o.MetricsAddr, o.ProbeAddr = "0", "0"
	o.Subsystems = []string{"composition"}
	o.WatchLabelSelector = selector
	o.SkipControllerNameValidation = true
	o.LeaderElection = true
	o.LeaderElectionNamespace = "default"
	mgr, err := manager.New(cfg, o, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, name, "stopped:", err)
		}
	}()
}

// TestShards runs two managers against one API server, one for the shard
// "a" and the default shard, and checks that each claim, its XR and its
// composed ConfigMap are written by its own shard's manager only.
func TestShards(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	startShard(t, ctx, "shard-a", kubeclient.ShardLabel+" in (a)")
	startShard(t, ctx, "shard-default", "!"+kubeclient.ShardLabel)
	c := env.Client
	for _, y := range []string{xrdYAML, compositionYAML} {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(y), &u.Object); err != nil {
			t.Fatal(err)
		}
		if err := c.Patch(ctx, u, client.Apply, client.FieldOwner("test"), client.ForceOwnership); err != nil {
			t.Fatal(err)
		}
	}
	ns := "shards"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		shard string // the label's value; "" for none
		by    string // the manager that must write
		notBy string
	}{
		"labelled a":  {shard: "a", by: "shard-a", notBy: "shard-default"},
		"unlabelled":  {by: "shard-default", notBy: "shard-a"},
		"labelled zz": {shard: "zz"}, // no manager runs shard zz
	}
	names := map[string]string{}
	for name, tc := range cases {
		u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"value": name}}}
		u.SetGroupVersionKind(claimGVK)
		u.SetNamespace(ns)
		u.SetName(strings.ReplaceAll(name, " ", "-"))
		if tc.shard != "" {
			u.SetLabels(map[string]string{kubeclient.ShardLabel: tc.shard})
		}
		eventually(t, time.Minute, "create claim "+name, func() error { return client.IgnoreAlreadyExists(c.Create(ctx, u)) })
		names[name] = u.GetName()
	}
	for name, tc := range cases {
		if tc.by == "" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			claim := &unstructured.Unstructured{}
			claim.SetGroupVersionKind(claimGVK)
			eventually(t, time.Minute, "claim Ready", func() error {
				if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: names[name]}, claim); err != nil {
					return err
				}
				if !ready(claim) {
					return fmt.Errorf("not Ready: %v", claim.Object["status"])
				}
				return nil
			})
			xr := &unstructured.Unstructured{}
			xr.SetGroupVersionKind(claimGVK.GroupVersion().WithKind("XShard"))
			if err := c.Get(ctx, client.ObjectKey{Name: controller.XRName(ns, names[name])}, xr); err != nil {
				t.Fatal(err)
			}
			cms := &corev1.ConfigMapList{}
			if err := c.List(ctx, cms, client.InNamespace(ns), client.MatchingLabels{"strata.dev/composite": xr.GetName()}); err != nil || len(cms.Items) != 1 {
				t.Fatalf("composed ConfigMaps of %s: %d, %v", xr.GetName(), len(cms.Items), err)
			}
			for _, o := range []client.Object{claim, xr, &cms.Items[0]} {
				if got := o.GetLabels()[kubeclient.ShardLabel]; got != tc.shard {
					t.Errorf("%s %s has shard label %q, want %q", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), got, tc.shard)
				}
			}
			for _, o := range []client.Object{claim, xr} {
				managers := map[string]bool{}
				for _, mf := range o.GetManagedFields() {
					managers[mf.Manager] = true
				}
				if !managers[tc.by] || managers[tc.notBy] {
					t.Errorf("%s %s written by %v, want %s and not %s", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), managers, tc.by, tc.notBy)
				}
			}
		})
	}
	// The claim of a shard no manager runs is left alone.
	zz := &unstructured.Unstructured{}
	zz.SetGroupVersionKind(claimGVK)
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: names["labelled zz"]}, zz); err != nil {
		t.Fatal(err)
	}
	// (Its status is not empty: a claim kind defaults it to Ready=False,
	// Creating. What a manager would leave is a finalizer and a status
	// write of its own.)
	var statusWriters []string
	for _, mf := range zz.GetManagedFields() {
		if mf.Subresource == "status" {
			statusWriters = append(statusWriters, mf.Manager)
		}
	}
	if len(zz.GetFinalizers()) > 0 || len(statusWriters) > 0 {
		t.Errorf("claim of shard zz was reconciled: finalizers %v, status written by %v", zz.GetFinalizers(), statusWriters)
	}
	// Each shard elects its own leader.
	leases := &coordinationv1.LeaseList{}
	if err := c.List(ctx, leases, client.InNamespace("default")); err != nil {
		t.Fatal(err)
	}
	holders := map[string]string{}
	for _, l := range leases.Items {
		if strings.HasPrefix(l.Name, "strata-manager") && l.Spec.HolderIdentity != nil {
			holders[l.Name] = *l.Spec.HolderIdentity
		}
	}
	if len(holders) != 2 {
		t.Errorf("leader election leases %v, want one per shard", holders)
	}
}

func ready(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, cd := range conds {
		m, _ := cd.(map[string]any)
		if m["type"] == "Ready" && m["status"] == "True" {
			return true
		}
	}
	return false
}

func eventually(t *testing.T, d time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = fn(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %v", what, d, err)
}

// TestManagerClientLimit checks that the manager's own client and API reader
// (the live reads of every subsystem) get --kube-api-qps too, instead of the
// 20 requests per second of the config they were given.
func TestManagerClientLimit(t *testing.T) {
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 20, 30
	cases := map[string]struct {
		limit   kubeclient.Limit
		wantQPS float32
	}{
		"default: unlimited":  {limit: manager.DefaultOptions().KubeAPI, wantQPS: -1},
		"--kube-api-qps=300":  {limit: kubeclient.Limit{QPS: 300}, wantQPS: 300},
		"0: the config's own": {limit: kubeclient.Limit{}, wantQPS: 20},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			o := manager.DefaultOptions()
			o.MetricsAddr, o.ProbeAddr = "0", "0"
			o.Subsystems = []string{"notification"}
			o.SkipControllerNameValidation = true
			o.KubeAPI = tc.limit
			mgr, err := manager.New(cfg, o, logr.Discard())
			if err != nil {
				t.Fatal(err)
			}
			if got := mgr.GetConfig().QPS; got != tc.wantQPS {
				t.Errorf("manager config QPS = %v, want %v", got, tc.wantQPS)
			}
		})
	}
}

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// lockedBuffer is a bytes.Buffer a command writes to while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const traceXRD = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: CompositeResourceDefinition
metadata: {name: xtraces.watch.strata.dev}
spec:
  group: watch.strata.dev
  names: {kind: XTrace, plural: xtraces}
  versions:
  - name: v1alpha1
    served: true
    referenceable: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {replicas: {type: integer}}}
`

const traceComposition = `
apiVersion: apiextensions.strata.dev/v1alpha1
kind: Composition
metadata: {name: xtrace}
spec:
  compositeTypeRef: {apiVersion: watch.strata.dev/v1alpha1, kind: XTrace}
  resources:
  - name: web
    template:
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: "${xr.metadata.name}-web"}
      spec:
        replicas: ${xr.spec.replicas}
        selector: {matchLabels: {app: trace}}
        template:
          metadata: {labels: {app: trace}}
          spec: {containers: [{name: web, image: nginx}]}
`

// deploymentLine returns the line of the Deployment in the last tree of
// out, or "".
func lastTreeLine(out, prefix string) string {
	trees := strings.Split(strings.TrimRight(out, "\n"), "\n\n")
	for _, l := range strings.Split(trees[len(trees)-1], "\n") {
		if strings.Contains(l, prefix) {
			return l
		}
	}
	return ""
}

// TestTraceWatch runs `strata trace --watch` against the API server while
// the composition controller composes a Deployment: when the Deployment
// becomes available, a new tree with it Ready (and then the XR Ready) is
// printed, driven by the watches. Stdout is not a terminal, so trees
// follow each other, separated by a blank line, without escape codes.
func TestTraceWatch(t *testing.T) {
	ctx := context.Background()
	applyYAML(t, traceXRD)
	applyYAML(t, traceComposition)
	poll(t, "XTrace demo created", func() error {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte("{apiVersion: watch.strata.dev/v1alpha1, kind: XTrace, metadata: {name: demo}, spec: {replicas: 2}}"), &u.Object); err != nil {
			return err
		}
		return env.Client.Patch(ctx, u, client.Apply, client.FieldOwner("test"), client.ForceOwnership)
	})
	poll(t, "Deployment default/demo-web composed", func() error {
		return env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "demo-web"}, &appsv1.Deployment{})
	})

	// The formats against the real server.
	poll(t, "trace -o json shows the Deployment", func() error {
		code, out, errOut := strata(t, "trace", "xtrace/demo", "-o", "json")
		root := &traceNode{}
		if err := json.Unmarshal([]byte(out), root); code != 0 || err != nil {
			return fmt.Errorf("exit %d %v %s", code, err, errOut)
		}
		if root.Kind != "XTrace" || len(root.Children) != 1 || root.Children[0].Kind != "Deployment" || root.Children[0].Ready != "False" {
			return fmt.Errorf("tree %s", out)
		}
		return nil
	})
	if code, out, errOut := strata(t, "trace", "xtrace.watch.strata.dev/demo", "-o", "name"); code != 0 || out != "xtrace.watch.strata.dev/demo\ndeployment.apps/demo-web\n" {
		t.Errorf("trace -o name (of a kind.group/name as -o name prints it): exit %d\n%s%s", code, out, errOut)
	}

	wctx, cancel := context.WithCancel(ctx)
	var out, errOut lockedBuffer
	done := make(chan int)
	go func() { done <- Run(wctx, []string{"trace", "xtrace/demo", "--watch"}, &out, &errOut) }()
	poll(t, "first tree, Deployment not ready", func() error {
		if l := lastTreeLine(out.String(), "Deployment/demo-web"); !strings.Contains(l, "False") {
			return fmt.Errorf("output:\n%s%s", out.String(), errOut.String())
		}
		return nil
	})
	trees := strings.Count(out.String(), "NAME ")

	// The Deployment becomes available.
	poll(t, "Deployment status written", func() error {
		d := &appsv1.Deployment{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "demo-web"}, d); err != nil {
			return err
		}
		d.Status = appsv1.DeploymentStatus{
			ObservedGeneration: d.Generation, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2,
			Conditions: []appsv1.DeploymentCondition{
				{Type: appsv1.DeploymentAvailable, Status: "True", Reason: "MinimumReplicasAvailable", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()},
				{Type: appsv1.DeploymentProgressing, Status: "True", Reason: "NewReplicaSetAvailable", LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now()},
			},
		}
		return env.Client.Status().Update(ctx, d)
	})
	poll(t, "a new tree with the Deployment and the XR ready", func() error {
		s := out.String()
		if strings.Count(s, "NAME ") <= trees || !strings.Contains(lastTreeLine(s, "Deployment/demo-web"), "True") ||
			!regexpLine(lastTreeLine(s, "XTrace/demo"), `^XTrace/demo\s+\S+\s+True`) {
			return fmt.Errorf("output:\n%s%s", s, errOut.String())
		}
		return nil
	})
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("trace --watch ended with exit %d: %s", code, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("trace --watch did not end when its context was cancelled")
	}
	s := out.String()
	if strings.Contains(s, clearScreen) {
		t.Errorf("escape codes in output that is not a terminal:\n%q", s)
	}
	trs := strings.Split(strings.TrimRight(s, "\n"), "\n\n")
	for i := 1; i < len(trs); i++ {
		if trs[i] == trs[i-1] {
			t.Errorf("tree %d printed twice unchanged:\n%s", i, trs[i])
		}
	}
	t.Logf("%d trees:\n%s", len(trs), s)

	// On a terminal the tree is redrawn in place. The requests show what
	// drives it: a watch on each object of the tree, by name.
	cfg, err := (&clusterFlags{}).config()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var watches []string
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Query().Get("watch") == "true" {
				mu.Lock()
				watches = append(watches, r.URL.Path+"?"+r.URL.Query().Get("fieldSelector"))
				mu.Unlock()
			}
			return rt.RoundTrip(r)
		})
	})
	k, err := newKubeFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tctx, tcancel := context.WithCancel(ctx)
	var tty lockedBuffer
	tdone := make(chan error)
	go func() {
		tdone <- watchTrace(tctx, &tracer{mapper: k.mapper, dyn: k.dyn}, "xtrace", "default", "demo", &tty, &errOut, "", true)
	}()
	poll(t, "tree drawn on the terminal", func() error {
		if s := tty.String(); !strings.HasPrefix(s, clearScreen+"NAME ") || !strings.Contains(s, "Deployment/demo-web") {
			return fmt.Errorf("%q", s)
		}
		return nil
	})
	tcancel()
	if err := <-tdone; err != nil {
		t.Error(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"/apis/watch.strata.dev/v1alpha1/xtraces?metadata.name=demo", "/apis/apps/v1/namespaces/default/deployments?metadata.name=demo-web"} {
		if !slices.Contains(watches, want) {
			t.Errorf("no watch %s; watches: %v", want, watches)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestIsTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(w) || isTerminal(&bytes.Buffer{}) {
		t.Error("a pipe or a buffer taken for a terminal")
	}
}

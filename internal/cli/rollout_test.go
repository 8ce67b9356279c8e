package cli

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
)

func rolloutFixture(t *testing.T) (*deliveryv1.Rollout, string) {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "cli-rollout-"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	ro := &deliveryv1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "web"},
		Spec: deliveryv1.RolloutSpec{
			TargetRef: deliveryv1.RolloutTargetReference{Kind: "Deployment", Name: "web"},
			Service:   "web",
			Strategy: deliveryv1.RolloutStrategy{Canary: &deliveryv1.CanaryStrategy{Steps: []deliveryv1.CanaryStep{
				{SetWeight: ptr.To[int32](20)},
				{Pause: &deliveryv1.RolloutPause{}},
				{Analysis: &deliveryv1.RolloutAnalysis{Templates: []deliveryv1.TemplateRef{{Name: "error-rate"}}}},
			}}},
		},
	}
	if err := env.Client.Create(ctx, ro); err != nil {
		t.Fatal(err)
	}
	// The status a controller would have written at the pause step.
	ro.Status = deliveryv1.RolloutStatus{
		Phase: deliveryv1.RolloutPhasePaused, Message: "step 1 (pause until promoted): waiting for promotion",
		StableRevision: &deliveryv1.RevisionInfo{PodTemplateHash: "stable1", GitRevision: "main@sha1:aaaa"},
		CanaryRevision: &deliveryv1.RevisionInfo{PodTemplateHash: "canary2", GitRevision: "main@sha1:bbbb"},
		CurrentStep:    ptr.To[int32](1), Weight: 20,
		AnalysisRuns: []deliveryv1.RolloutAnalysisRunStatus{{Name: "web-canary2-0-bg", Kind: deliveryv1.AnalysisKindBackground, Step: -1,
			Phase: deliveryv1.PhaseRunning, Message: "measuring 1 metrics"}},
		Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse, Reason: deliveryv1.ReasonRolloutPaused,
			Message: "waiting for promotion", LastTransitionTime: metav1.Now()}},
	}
	if err := env.Client.Status().Update(ctx, ro); err != nil {
		t.Fatal(err)
	}
	// Pods of each revision: five stable, one canary (not Ready yet).
	for i, hash := range []string{"stable1", "stable1", "stable1", "stable1", "stable1", "canary2"} {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, GenerateName: "web-", Labels: map[string]string{"app": "web", deliveryv1.PodTemplateHashLabel: hash}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "web"}}},
		}
		if err := env.Client.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		if i < 5 {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
			if err := env.Client.Status().Update(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	return ro, ns.Name
}

// TestRolloutGet prints a Rollout paused at a step: its revisions with the
// pods of each, the steps with the current one, the analysis verdicts and
// the conditions.
func TestRolloutGet(t *testing.T) {
	_, ns := rolloutFixture(t)
	var out, errb bytes.Buffer
	if code := Run(context.Background(), []string{"rollout", "get", "web", "-n", ns}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errb.String())
	}
	got := out.String()
	for _, want := range []string{
		"Rollout " + ns + "/web: Paused (Canary, Deployment web, Service web)",
		"Weight: 20%",
		"stable  stable1  main@sha1:aaaa  5/5",
		"canary  canary2  main@sha1:bbbb  0/1",
		"0  setWeight 20            done",
		"1  pause (until promoted)  current",
		"2  analysis error-rate",
		"web-canary2-0-bg  Background  -     Running",
		"Ready  False   RolloutPaused",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	out.Reset()
	if code := Run(context.Background(), []string{"rollout", "get", "web", "-n", ns, "-o", "yaml"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "kind: Rollout") {
		t.Errorf("-o yaml: exit %d\n%s", code, out.String())
	}
	if code := Run(context.Background(), []string{"rollout", "get", "nope", "-n", ns}, &out, &errb); code == 0 {
		t.Error("a missing Rollout should fail")
	}
}

// TestRolloutGetWatch prints again when the Rollout changes.
func TestRolloutGetWatch(t *testing.T) {
	ro, ns := rolloutFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int)
	go func() { done <- Run(ctx, []string{"rollout", "get", "web", "-n", ns, "--watch"}, &out, &errb) }()
	waitOutput(t, &out, "Weight: 20%")
	base := ro.DeepCopy()
	ro.Status.Weight = 60
	if err := env.Client.Status().Patch(context.Background(), ro, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, &out, "Weight: 60%")
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "---") {
		t.Errorf("the two prints should be separated:\n%s", out.String())
	}
}

// TestRolloutRequests: promote, promote --full, abort and retry set their
// annotation to a new token each time, as kubectl annotate would.
func TestRolloutRequests(t *testing.T) {
	ro, ns := rolloutFixture(t)
	cases := []struct {
		args []string
		key  string
	}{
		{[]string{"rollout", "promote", "web"}, deliveryv1.PromoteAnnotation},
		{[]string{"rollout", "promote", "web", "--full"}, deliveryv1.PromoteFullAnnotation},
		{[]string{"rollout", "abort", "web"}, deliveryv1.AbortAnnotation},
		{[]string{"rollout", "retry", "web"}, deliveryv1.RetryAnnotation},
		{[]string{"rollout", "promote", "web"}, deliveryv1.PromoteAnnotation},
	}
	tokens := map[string]string{}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		if code := Run(context.Background(), append(tc.args, "-n", ns), &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, errb.String())
		}
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(ro), ro); err != nil {
			t.Fatal(err)
		}
		v := ro.Annotations[tc.key]
		if v == "" || v == tokens[tc.key] || !strings.Contains(out.String(), tc.key+"="+v) {
			t.Errorf("%v: annotation %s=%q (before %q), output %q", tc.args, tc.key, v, tokens[tc.key], out.String())
		}
		tokens[tc.key] = v
	}
	var out, errb bytes.Buffer
	if code := Run(context.Background(), []string{"rollout", "abort", "nope", "-n", ns}, &out, &errb); code == 0 {
		t.Error("aborting a missing Rollout should fail")
	}
}

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitOutput(t *testing.T, b *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("output lacks %q:\n%s", want, b.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

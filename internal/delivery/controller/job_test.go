package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/testenv"
	"github.com/strata-dev/strata/internal/testenv/managedtest"
)

func smokeJob(image string) deliveryv1.Metric {
	return deliveryv1.Metric{Name: "smoke", NoData: deliveryv1.NoDataFail,
		Provider: deliveryv1.MetricProvider{Job: &deliveryv1.JobMetric{Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "smoke", Image: image, Args: []string{"--revision={{args.revision}}"}}},
			}},
		}}}}
}

// TestJobMetric runs a Job measurement on a whole local cluster (the Job
// controller runs, kwok completes the pod): Complete is Successful. A run
// whose service account may not create Jobs gets an Error measurement
// naming the refusal, and no Job.
func TestJobMetric(t *testing.T) {
	cl, err := testenv.StartCluster()
	if err != nil {
		t.Fatalf("cannot start the local cluster: %v", err)
	}
	defer cl.Stop()
	managedtest.StartManager(t, cl.Config, func(mgr ctrl.Manager) error { return Setup(mgr, Options{Workers: 2}) })
	ctx := context.Background()
	c := cl.Client
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "jobs-"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "no-jobs"}}); err != nil {
		t.Fatal(err)
	}
	ok := &deliveryv1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "smoke"},
		Spec: deliveryv1.AnalysisRunSpec{Args: []deliveryv1.Argument{{Name: "revision", Value: ptr.To("abc")}}, Metrics: []deliveryv1.Metric{smokeJob("example.com/smoke:1")}}}
	denied := &deliveryv1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "denied"},
		Spec: deliveryv1.AnalysisRunSpec{ServiceAccountName: "no-jobs", Args: ok.Spec.Args, Metrics: []deliveryv1.Metric{func() deliveryv1.Metric {
			m := smokeJob("example.com/smoke:1")
			m.ConsecutiveErrorLimit = ptr.To[int32](0)
			return m
		}()}}}
	for _, r := range []*deliveryv1.AnalysisRun{ok, denied} {
		if err := c.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(run *deliveryv1.AnalysisRun) {
		managedtest.Eventually(t, 2*time.Minute, "run "+run.Name+" completed", func() error {
			if err := c.Get(ctx, client.ObjectKeyFromObject(run), run); err != nil {
				return err
			}
			if !run.Status.Completed() {
				return errorf("phase %q: %s", run.Status.Phase, run.Status.Message)
			}
			return nil
		})
	}
	wait(ok)
	if ok.Status.Phase != deliveryv1.PhaseSuccessful {
		t.Fatalf("phase %s (%s)", ok.Status.Phase, ok.Status.Message)
	}
	m := ok.Status.MetricResults[0].Measurements[0]
	job := &batchv1.Job{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: m.Query}, job); err != nil {
		t.Fatalf("job %q: %v", m.Query, err)
	}
	if !metav1.IsControlledBy(job, ok) || job.Spec.Template.Spec.Containers[0].Args[0] != "--revision=abc" {
		t.Errorf("job owners %v, args %v", job.OwnerReferences, job.Spec.Template.Spec.Containers[0].Args)
	}

	wait(denied)
	if denied.Status.Phase != deliveryv1.PhaseError || !strings.Contains(denied.Status.MetricResults[0].Measurements[0].Message, "forbidden") {
		t.Errorf("denied: phase %s, measurements %+v", denied.Status.Phase, denied.Status.MetricResults[0].Measurements)
	}
	jobs := &batchv1.JobList{}
	if err := c.List(ctx, jobs, client.InNamespace(ns.Name), client.MatchingLabels{LabelRun: "denied"}); err != nil || len(jobs.Items) != 0 {
		t.Errorf("a Job was created for the run whose account may not: %d (err %v)", len(jobs.Items), err)
	}
}

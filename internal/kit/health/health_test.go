package health

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func obj(t *testing.T, s string) *unstructured.Unstructured {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestCompute asserts kstatus's answer, or the Strata rule named in the
// case, for each kind of object Strata waits on.
func TestCompute(t *testing.T) {
	cases := map[string]struct {
		obj  string
		want Result
	}{
		"deployment available": {
			obj: `{apiVersion: apps/v1, kind: Deployment, metadata: {name: a, generation: 2}, spec: {replicas: 2},
				status: {observedGeneration: 2, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2,
				conditions: [{type: Available, status: "True"}, {type: Progressing, status: "True", reason: NewReplicaSetAvailable}]}}`,
			want: Result{Current, "Deployment is available. Replicas: 2"},
		},
		"deployment with 1 of 2 available": {
			obj: `{apiVersion: apps/v1, kind: Deployment, metadata: {name: a, generation: 1}, spec: {replicas: 2},
				status: {observedGeneration: 1, replicas: 2, updatedReplicas: 2, readyReplicas: 1, availableReplicas: 1,
				conditions: [{type: Available, status: "True"}, {type: Progressing, status: "True", reason: ReplicaSetUpdated}]}}`,
			want: Result{InProgress, "Available: 1/2"},
		},
		"deployment without status (no Ready condition) waits": {
			obj:  `{apiVersion: apps/v1, kind: Deployment, metadata: {name: a, generation: 1}, spec: {replicas: 1}}`,
			want: Result{InProgress, "Replicas: 0/1"},
		},
		"deployment progress deadline exceeded": {
			obj: `{apiVersion: apps/v1, kind: Deployment, metadata: {name: a, generation: 1}, spec: {replicas: 1},
				status: {observedGeneration: 1, conditions: [{type: Progressing, status: "False", reason: ProgressDeadlineExceeded}]}}`,
			want: Result{Failed, "Progress deadline exceeded"},
		},
		"daemonset with 2 of 3 ready": {
			obj: `{apiVersion: apps/v1, kind: DaemonSet, metadata: {name: a, generation: 1},
				status: {observedGeneration: 1, desiredNumberScheduled: 3, currentNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3, numberReady: 2}}`,
			want: Result{InProgress, "Ready: 2/3"},
		},
		"statefulset ready": {
			obj: `{apiVersion: apps/v1, kind: StatefulSet, metadata: {name: a, generation: 1}, spec: {replicas: 2},
				status: {observedGeneration: 1, replicas: 2, readyReplicas: 2, currentReplicas: 2, updatedReplicas: 2, currentRevision: r1, updateRevision: r1}}`,
			want: Result{Current, "All replicas scheduled as expected. Replicas: 2"},
		},
		"statefulset rolling out": {
			obj: `{apiVersion: apps/v1, kind: StatefulSet, metadata: {name: a, generation: 1}, spec: {replicas: 2},
				status: {observedGeneration: 1, replicas: 2, readyReplicas: 2, currentReplicas: 2, updatedReplicas: 1, currentRevision: r1, updateRevision: r2}}`,
			want: Result{InProgress, "Waiting for updated revision to match current"},
		},
		"loadbalancer service without an address": {
			obj:  `{apiVersion: v1, kind: Service, metadata: {name: a}, spec: {type: LoadBalancer}}`,
			want: Result{InProgress, "ClusterIP not set. Service type: LoadBalancer"},
		},
		"clusterip service": {
			obj:  `{apiVersion: v1, kind: Service, metadata: {name: a}, spec: {clusterIP: 10.0.0.1}}`,
			want: Result{Current, "Service is ready"},
		},
		"custom resource whose observedGeneration lags": {
			obj:  `{apiVersion: example.org/v1, kind: Widget, metadata: {name: a, generation: 3}, status: {observedGeneration: 2, conditions: [{type: Ready, status: "True"}]}}`,
			want: Result{InProgress, "Widget generation is 3, but latest observed generation is 2"},
		},
		"custom resource without conditions": {
			obj:  `{apiVersion: example.org/v1, kind: Widget, metadata: {name: a}}`,
			want: Result{Current, "Resource is current"},
		},
		"rollout without conditions waits (kstatus would say Current)": {
			obj:  `{apiVersion: delivery.strata.dev/v1alpha1, kind: Rollout, metadata: {name: a, generation: 1}}`,
			want: Result{InProgress, "waiting for the Ready condition"},
		},
		"rollout between canary steps waits, though it says neither Reconciling nor Stalled": {
			obj: `{apiVersion: delivery.strata.dev/v1alpha1, kind: Rollout, metadata: {name: a, generation: 1},
				status: {observedGeneration: 1, conditions: [{type: Ready, status: "False", reason: Paused, message: "step 2 of 5: pause 10s"}]}}`,
			want: Result{InProgress, "step 2 of 5: pause 10s"},
		},
		"aborted rollout fails": {
			obj: `{apiVersion: delivery.strata.dev/v1alpha1, kind: Rollout, metadata: {name: a, generation: 1},
				status: {observedGeneration: 1, conditions: [{type: Ready, status: "False", reason: Aborted, message: "analysis failed"},
				{type: Stalled, status: "True", reason: Aborted, message: "analysis failed"}]}}`,
			want: Result{Failed, "analysis failed"},
		},
		"rollout ready": {
			obj: `{apiVersion: delivery.strata.dev/v1alpha1, kind: Rollout, metadata: {name: a, generation: 1},
				status: {observedGeneration: 1, conditions: [{type: Ready, status: "True", reason: Healthy}]}}`,
			want: Result{Current, "Resource is Ready"},
		},
		"pod in CrashLoopBackOff fails": {
			obj: `{apiVersion: v1, kind: Pod, metadata: {name: a}, status: {phase: Running, conditions: [{type: Ready, status: "False"}],
				containerStatuses: [{name: app, state: {waiting: {reason: CrashLoopBackOff}}}]}}`,
			want: Result{Failed, "Containers in CrashLoop state: app"},
		},
		"pod ready": {
			obj:  `{apiVersion: v1, kind: Pod, metadata: {name: a}, status: {phase: Running, conditions: [{type: Ready, status: "True"}]}}`,
			want: Result{Current, "Pod is Ready"},
		},
		"crd with NamesAccepted=False fails": {
			obj: `{apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, metadata: {name: a},
				status: {conditions: [{type: NamesAccepted, status: "False", reason: MultipleNamesNotAllowed, message: "plural conflicts"}]}}`,
			want: Result{Failed, "plural conflicts"},
		},
		"crd established": {
			obj:  `{apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, metadata: {name: a}, status: {conditions: [{type: Established, status: "True"}]}}`,
			want: Result{Current, "CRD is established"},
		},
		"job complete": {
			obj:  `{apiVersion: batch/v1, kind: Job, metadata: {name: a}, status: {startTime: "2026-01-01T00:00:00Z", succeeded: 1, conditions: [{type: Complete, status: "True"}]}}`,
			want: Result{Current, "Job Completed. succeeded: 1/1"},
		},
		"job failed": {
			obj:  `{apiVersion: batch/v1, kind: Job, metadata: {name: a}, status: {startTime: "2026-01-01T00:00:00Z", failed: 1, conditions: [{type: Failed, status: "True"}]}}`,
			want: Result{Failed, "Job Failed. failed: 1/1"},
		},
		"job running waits for Complete (Strata rule; kstatus says Current)": {
			obj:  `{apiVersion: batch/v1, kind: Job, metadata: {name: a}, status: {startTime: "2026-01-01T00:00:00Z", active: 1}}`,
			want: Result{InProgress, "Job is not complete: Job in progress. success:0, active: 1, failed: 0"},
		},
		"pvc bound": {
			obj:  `{apiVersion: v1, kind: PersistentVolumeClaim, metadata: {name: a}, status: {phase: Bound}}`,
			want: Result{Current, "PVC is Bound"},
		},
		"pvc pending": {
			obj:  `{apiVersion: v1, kind: PersistentVolumeClaim, metadata: {name: a}, status: {phase: Pending}}`,
			want: Result{InProgress, "PVC is not Bound. phase: Pending"},
		},
		"configmap": {
			obj:  `{apiVersion: v1, kind: ConfigMap, metadata: {name: a}}`,
			want: Result{Current, "Resource is always ready"},
		},
		"secret": {
			obj:  `{apiVersion: v1, kind: Secret, metadata: {name: a}}`,
			want: Result{Current, "Resource is always ready"},
		},
		"being deleted": {
			obj:  `{apiVersion: v1, kind: ConfigMap, metadata: {name: a, deletionTimestamp: "2026-01-01T00:00:00Z"}}`,
			want: Result{Terminating, "Resource scheduled for deletion"},
		},
		"xr with Ready=False": {
			obj: `{apiVersion: example.org/v1, kind: XDatabase, metadata: {name: a, generation: 1}, spec: {compositionRef: {name: c}},
				status: {observedGeneration: 1, conditions: [{type: Synced, status: "True"}, {type: Ready, status: "False", reason: Creating, message: "waiting for db"}]}}`,
			want: Result{InProgress, "waiting for db"},
		},
		"xr with Ready=True": {
			obj: `{apiVersion: example.org/v1, kind: XDatabase, metadata: {name: a, generation: 1}, spec: {compositionRef: {name: c}},
				status: {observedGeneration: 1, conditions: [{type: Synced, status: "True"}, {type: Ready, status: "True", reason: Available}]}}`,
			want: Result{Current, "Resource is Ready"},
		},
		"xr before its controller wrote conditions waits (Strata rule; kstatus says Current)": {
			obj:  `{apiVersion: example.org/v1, kind: XDatabase, metadata: {name: a, generation: 1}, spec: {compositionRef: {name: c}}}`,
			want: Result{InProgress, "waiting for the Ready condition"},
		},
		"xr Ready=True with Reconciling=True is judged by Ready (Strata rule)": {
			obj: `{apiVersion: example.org/v1, kind: XDatabase, metadata: {name: a}, spec: {},
				status: {conditions: [{type: Synced, status: "False", reason: ReconciliationPaused}, {type: Ready, status: "True"}, {type: Reconciling, status: "True"}]}}`,
			want: Result{Current, "Resource is Ready"},
		},
		"managed resource before its provider wrote conditions waits (Strata rule; kstatus says Current)": {
			obj:  `{apiVersion: postgresql.sql.strata.dev/v1alpha1, kind: Database, metadata: {name: a, generation: 1}, spec: {forProvider: {encoding: UTF8}}}`,
			want: Result{InProgress, "waiting for the Ready condition"},
		},
		"managed resource Ready=True": {
			obj: `{apiVersion: postgresql.sql.strata.dev/v1alpha1, kind: Database, metadata: {name: a, generation: 1}, spec: {forProvider: {}},
				status: {conditions: [{type: Synced, status: "True"}, {type: Ready, status: "True", reason: Available}]}}`,
			want: Result{Current, "Resource is Ready"},
		},
		"claim with Ready=False": {
			obj: `{apiVersion: example.org/v1, kind: Database, metadata: {name: a, namespace: n}, spec: {resourceRef: {name: x}},
				status: {conditions: [{type: Ready, status: "False", reason: Creating}]}}`,
			want: Result{InProgress, "Creating"},
		},
		"claim stalled": {
			obj: `{apiVersion: example.org/v1, kind: Database, metadata: {name: a, namespace: n}, spec: {resourceRef: {name: x}},
				status: {conditions: [{type: Ready, status: "False", reason: CompositionInvalid}, {type: Stalled, status: "True", reason: CompositionInvalid, message: "bad"}]}}`,
			want: Result{Failed, "bad"},
		},
		"sync ready": {
			obj: `{apiVersion: gitops.strata.dev/v1alpha1, kind: Sync, metadata: {name: a, generation: 2},
				status: {observedGeneration: 2, conditions: [{type: Ready, status: "True", reason: ReconciliationSucceeded}]}}`,
			want: Result{Current, "Resource is Ready"},
		},
		"sync reconciling": {
			obj: `{apiVersion: gitops.strata.dev/v1alpha1, kind: Sync, metadata: {name: a, generation: 2},
				status: {observedGeneration: 2, conditions: [{type: Ready, status: "False", reason: Progressing}, {type: Reconciling, status: "True", reason: Progressing, message: "applying"}]}}`,
			want: Result{InProgress, "applying"},
		},
		"sync stalled": {
			obj: `{apiVersion: gitops.strata.dev/v1alpha1, kind: Sync, metadata: {name: a, generation: 2},
				status: {observedGeneration: 2, conditions: [{type: Ready, status: "False", reason: BuildFailed}, {type: Stalled, status: "True", reason: BuildFailed, message: "kustomize failed"}]}}`,
			want: Result{Failed, "kustomize failed"},
		},
		"sync failing and retrying": {
			obj: `{apiVersion: gitops.strata.dev/v1alpha1, kind: Sync, metadata: {name: a, generation: 2},
				status: {observedGeneration: 2, conditions: [{type: Ready, status: "False", reason: ArtifactFailed, message: "no artifact yet"}]}}`,
			want: Result{InProgress, "no artifact yet"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Compute(obj(t, tc.obj))); diff != "" {
				t.Errorf("Compute (-want +got):\n%s", diff)
			}
		})
	}
	if diff := cmp.Diff(Result{NotFound, "not found"}, Compute(nil)); diff != "" {
		t.Errorf("Compute(nil) (-want +got):\n%s", diff)
	}
}

func TestMalformedIsUnknown(t *testing.T) {
	u := obj(t, `{apiVersion: v1, kind: Pod, metadata: {name: a}, status: {phase: Running, containerStatuses: ["not an object"]}}`)
	if got := Compute(u); got.Status != Unknown {
		t.Errorf("Compute = %+v, want Unknown", got)
	}
}

// FuzzCompute: no object, however malformed, makes Compute panic.
func FuzzCompute(f *testing.F) {
	f.Add(`{"apiVersion":"v1","kind":"Pod","status":{"phase":"Running","containerStatuses":[{"name":"a","state":{"waiting":{"reason":1}}}]}}`)
	f.Add(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"generation":"x"},"spec":{"replicas":"2"}}`)
	f.Add(`{"apiVersion":"x/v1","kind":"X","spec":{"resourceRefs":[]},"status":{"conditions":[1,{"type":"Ready"}]}}`)
	f.Add(`{"apiVersion":"batch/v1","kind":"Job","status":{"conditions":"no"}}`)
	f.Fuzz(func(t *testing.T, s string) {
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON([]byte(s)); err != nil {
			return
		}
		_ = Compute(u)
	})
}

package health

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func obj(t *testing.T, s string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(s), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestCompute(t *testing.T) {
	cases := map[string]struct {
		obj  string
		want Status
	}{
		"configmap has no status":      {"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}", Current},
		"unobserved generation":        {"apiVersion: x/v1\nkind: X\nmetadata: {name: a, generation: 2}\nstatus: {observedGeneration: 1}", InProgress},
		"ready false":                  {"apiVersion: x/v1\nkind: X\nmetadata: {name: a}\nstatus: {conditions: [{type: Ready, status: 'False'}]}", InProgress},
		"ready true":                   {"apiVersion: x/v1\nkind: X\nmetadata: {name: a}\nstatus: {conditions: [{type: Ready, status: 'True'}]}", Current},
		"stalled fails":                {"apiVersion: x/v1\nkind: X\nmetadata: {name: a}\nstatus: {conditions: [{type: Ready, status: 'False'}, {type: Stalled, status: 'True'}]}", Failed},
		"reconciling":                  {"apiVersion: x/v1\nkind: X\nmetadata: {name: a}\nstatus: {conditions: [{type: Ready, status: 'True'}, {type: Reconciling, status: 'True'}]}", InProgress},
		"deployment available":         {"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a, generation: 1}\nspec: {replicas: 2}\nstatus: {observedGeneration: 1, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2}", Current},
		"deployment rolling":           {"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a, generation: 1}\nspec: {replicas: 2}\nstatus: {observedGeneration: 1, replicas: 2, updatedReplicas: 1, readyReplicas: 2, availableReplicas: 2}", InProgress},
		"deployment deadline exceeded": {"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a, generation: 1}\nspec: {replicas: 1}\nstatus: {observedGeneration: 1, conditions: [{type: Progressing, status: 'False', reason: ProgressDeadlineExceeded}]}", Failed},
		"job failed":                   {"apiVersion: batch/v1\nkind: Job\nmetadata: {name: a}\nstatus: {conditions: [{type: Failed, status: 'True'}]}", Failed},
		"job complete":                 {"apiVersion: batch/v1\nkind: Job\nmetadata: {name: a}\nstatus: {conditions: [{type: Complete, status: 'True'}]}", Current},
		"job running":                  {"apiVersion: batch/v1\nkind: Job\nmetadata: {name: a}\nstatus: {active: 1}", InProgress},
		"crd not established":          {"apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: a}", InProgress},
		"terminating":                  {"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, deletionTimestamp: '2020-01-01T00:00:00Z'}", Terminating},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := Compute(obj(t, tc.obj)); got.Status != tc.want {
				t.Errorf("Compute = %+v, want %s", got, tc.want)
			}
		})
	}
	if Compute(nil).Status != NotFound {
		t.Error("nil is not NotFound")
	}
}

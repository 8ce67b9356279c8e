package render

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	apiservercel "k8s.io/apiserver/pkg/cel"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"sigs.k8s.io/yaml"

	"github.com/strata-dev/strata/apis/apiextensions/v1alpha1"
	"github.com/strata-dev/strata/internal/composition/cel"
	"github.com/strata-dev/strata/internal/composition/dag"
)

func composition(t *testing.T, y string) *v1alpha1.CompositionSpec {
	t.Helper()
	spec := &v1alpha1.CompositionSpec{}
	if err := yaml.UnmarshalStrict([]byte(y), spec); err != nil {
		t.Fatal(err)
	}
	return spec
}

func obj(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if err := u.UnmarshalJSON(j); err != nil {
		t.Fatal(err)
	}
	return u
}

const webapp = `
compositeTypeRef: {apiVersion: example.org/v1, kind: XApp}
resources:
- name: config
  template:
    apiVersion: v1
    kind: ConfigMap
    data:
      image: ${xr.spec.image}
- name: db
  template:
    apiVersion: sql.strata.dev/v1alpha1
    kind: Database
    spec: {name: "${xr.metadata.name}"}
- name: app
  readyWhen: ["${app.status.?availableReplicas.orValue(0) == xr.spec.replicas}"]
  template:
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: "${xr.metadata.name}"}
    spec:
      replicas: ${xr.spec.replicas}
      template:
        metadata:
          annotations: {config: "${config.metadata.name}", db: "${db.status.endpoint}"}
- name: hpa
  includeWhen: ["${xr.spec.replicas > 2}"]
  template:
    apiVersion: autoscaling/v2
    kind: HorizontalPodAutoscaler
    spec: {maxReplicas: "${xr.spec.replicas * 2}", scaleTargetRef: {name: "${app.metadata.name}"}}
status:
  endpoint: ${db.status.endpoint}
  replicas: ${app.status.availableReplicas}
connectionDetails:
  host: ${db.status.endpoint}
`

const xrYAML = `
apiVersion: example.org/v1
kind: XApp
metadata:
  name: shop
  labels: {strata.dev/claim-name: shop, strata.dev/claim-namespace: team-a}
spec: {image: nginx, replicas: 3}
`

func TestRenderOrderAndReadiness(t *testing.T) {
	spec := composition(t, webapp)
	xr := obj(t, xrYAML)
	cases := map[string]struct {
		observed    map[string]string
		wantStates  map[string]State
		wantWaiting []string
		wantReady   bool
		wantStatus  map[string]any
		wantConn    map[string]string
	}{
		"nothing observed": {
			wantStates:  map[string]State{"config": Apply, "db": Apply, "app": Blocked, "hpa": Blocked},
			wantWaiting: []string{"config (not created yet)", "db (not created yet)", "app (waiting for config, db)", "hpa (waiting for app)"},
		},
		"db creating": {
			observed: map[string]string{
				"config": "{apiVersion: v1, kind: ConfigMap, metadata: {name: shop-config}}",
				"db":     "{apiVersion: sql.strata.dev/v1alpha1, kind: Database, metadata: {name: shop-db}, status: {conditions: [{type: Ready, status: 'False', reason: Creating}]}}",
			},
			wantStates:  map[string]State{"config": Apply, "db": Apply, "app": Blocked, "hpa": Blocked},
			wantWaiting: []string{"db (Creating)", "app (waiting for db)", "hpa (waiting for app)"},
		},
		"all ready": {
			observed: map[string]string{
				"config": "{apiVersion: v1, kind: ConfigMap, metadata: {name: shop-config}}",
				"db":     "{apiVersion: sql.strata.dev/v1alpha1, kind: Database, metadata: {name: shop-db}, status: {endpoint: 'db:5432', conditions: [{type: Ready, status: 'True'}]}}",
				"app":    "{apiVersion: apps/v1, kind: Deployment, metadata: {name: shop}, status: {availableReplicas: 3}}",
				"hpa":    "{apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, metadata: {name: shop-hpa}}",
			},
			wantStates: map[string]State{"config": Apply, "db": Apply, "app": Apply, "hpa": Apply},
			wantReady:  true,
			wantStatus: map[string]any{"endpoint": "db:5432", "replicas": int64(3)},
			wantConn:   map[string]string{"host": "db:5432"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			observed := map[string]*unstructured.Unstructured{}
			for k, v := range tc.observed {
				observed[k] = obj(t, v)
			}
			out, err := Render(Input{XR: xr, Composition: spec, Observed: observed, DefaultNamespace: "team-a"})
			if err != nil {
				t.Fatal(err)
			}
			states := map[string]State{}
			for _, r := range out.Resources {
				states[r.ID] = r.State
			}
			if d := cmp.Diff(tc.wantStates, states); d != "" {
				t.Errorf("states (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.wantWaiting, out.Waiting); d != "" {
				t.Errorf("waiting (-want +got):\n%s", d)
			}
			if out.Ready != tc.wantReady {
				t.Errorf("Ready = %v, want %v", out.Ready, tc.wantReady)
			}
			if d := cmp.Diff(tc.wantStatus, out.Status); tc.wantStatus != nil && d != "" {
				t.Errorf("status (-want +got):\n%s", d)
			}
			conn := map[string]string{}
			for k, v := range out.ConnectionDetails {
				conn[k] = string(v)
			}
			if tc.wantConn != nil {
				if d := cmp.Diff(tc.wantConn, conn); d != "" {
					t.Errorf("connection details (-want +got):\n%s", d)
				}
			}
		})
	}
}

func TestRenderDesiredObject(t *testing.T) {
	out, err := Render(Input{XR: obj(t, xrYAML), Composition: composition(t, webapp), DefaultNamespace: "team-a"})
	if err != nil {
		t.Fatal(err)
	}
	got := out.Resources[0].Desired.Object
	want := obj(t, `
apiVersion: v1
kind: ConfigMap
metadata:
  name: shop-config
  namespace: team-a
  labels:
    strata.dev/composite: shop
    strata.dev/claim-name: shop
    strata.dev/claim-namespace: team-a
    strata.dev/resource-name: config
data: {image: nginx}
`).Object
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("config (-want +got):\n%s", d)
	}
}

func TestRenderTypes(t *testing.T) {
	spec := composition(t, `
compositeTypeRef: {apiVersion: example.org/v1, kind: XApp}
resources:
- name: cm
  template:
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: fixed}
    data:
      text: "${xr.spec.replicas} replicas of ${xr.spec.image}"
      list: ${[1, 2]}
      flag: ${xr.spec.replicas > 1}
`)
	out, err := Render(Input{XR: obj(t, xrYAML), Composition: spec})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"text": "3 replicas of nginx", "list": []any{int64(1), int64(2)}, "flag": true}
	if d := cmp.Diff(want, out.Resources[0].Desired.Object["data"]); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if out.Resources[0].Desired.GetName() != "fixed" || out.Resources[0].Desired.GetNamespace() != "" {
		t.Errorf("name/namespace = %s/%s", out.Resources[0].Desired.GetNamespace(), out.Resources[0].Desired.GetName())
	}
}

func TestRenderIncludeWhenAndForEach(t *testing.T) {
	spec := composition(t, `
compositeTypeRef: {apiVersion: example.org/v1, kind: XTeam}
resources:
- name: ns
  template: {apiVersion: v1, kind: Namespace, metadata: {name: "${xr.metadata.name}"}}
- name: binding
  forEach: {variable: member, in: "${xr.spec.members}"}
  template:
    apiVersion: rbac.authorization.k8s.io/v1
    kind: RoleBinding
    metadata: {name: "${member}-${memberIndex}", namespace: "${ns.metadata.name}"}
- name: quota
  includeWhen: ["${has(xr.spec.cpu)}"]
  template: {apiVersion: v1, kind: ResourceQuota, spec: {hard: {cpu: "${xr.spec.cpu}"}}}
`)
	xr := obj(t, "{apiVersion: example.org/v1, kind: XTeam, metadata: {name: team}, spec: {members: [ann, bob]}}")
	observed := map[string]*unstructured.Unstructured{
		"ns":        obj(t, "{apiVersion: v1, kind: Namespace, metadata: {name: team}}"),
		"binding-5": obj(t, "{apiVersion: rbac.authorization.k8s.io/v1, kind: RoleBinding, metadata: {name: old}}"),
		"quota":     obj(t, "{apiVersion: v1, kind: ResourceQuota, metadata: {name: team-quota}}"),
	}
	out, err := Render(Input{XR: xr, Composition: spec, Observed: observed})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range out.Resources {
		got[r.ID] = string(r.State)
		if r.Desired != nil {
			got[r.ID] += " " + r.Desired.GetNamespace() + "/" + r.Desired.GetName()
		}
	}
	want := map[string]string{
		"ns":        "Apply /team",
		"binding-0": "Apply team/ann-0",
		"binding-1": "Apply team/bob-1",
		"binding-5": "Excluded",
		"quota":     "Excluded",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestPlanErrors(t *testing.T) {
	base := "compositeTypeRef: {apiVersion: example.org/v1, kind: X}\nresources:\n"
	cases := map[string]struct {
		resources string
		want      []string
	}{
		"syntax": {
			resources: "- name: a\n  template: {apiVersion: v1, kind: ConfigMap, data: {x: '${xr.spec.}'}}",
			want:      []string{`resource "a"`, "template.data.x", `"xr.spec."`, "Syntax error"},
		},
		"unknown variable": {
			resources: "- name: a\n  template: {apiVersion: v1, kind: ConfigMap, data: {x: '${dbb.status}'}}",
			want:      []string{`resource "a"`, "undeclared reference to 'dbb'"},
		},
		"cycle": {
			resources: "- name: a\n  template: {apiVersion: v1, kind: ConfigMap, data: {x: '${b.data.x}'}}\n" +
				"- name: b\n  template: {apiVersion: v1, kind: ConfigMap, data: {x: '${a.data.x}'}}",
			want: []string{"dependency cycle: a -> b -> a"},
		},
		"readyWhen not bool": {
			resources: "- name: a\n  readyWhen: ['${1 + 1}']\n  template: {apiVersion: v1, kind: ConfigMap}",
			want:      []string{"readyWhen[0]", "must give a bool, gives int"},
		},
		"forEach variable outside": {
			resources: "- name: a\n  forEach: {in: '${xr.spec.l}'}\n  template: {apiVersion: v1, kind: ConfigMap}\n" +
				"- name: b\n  template: {apiVersion: v1, kind: ConfigMap, data: {x: '${each}'}}",
			want: []string{`resource "b"`, `variable "each" belongs to the forEach of resource "a"`},
		},
		"unterminated": {
			resources: "- name: a\n  template: {apiVersion: v1, kind: ConfigMap, data: {x: 'a-${xr.spec'}}",
			want:      []string{"template.data.x", "missing }"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := NewPlan(composition(t, base+tc.resources), nil)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestRenderRuntimeErrorNamesField(t *testing.T) {
	spec := composition(t, `
compositeTypeRef: {apiVersion: example.org/v1, kind: X}
resources:
- name: a
  template: {apiVersion: v1, kind: ConfigMap, data: {x: "${string(xr.spec.replicas / 0)}"}}
`)
	_, err := Render(Input{XR: obj(t, xrYAML), Composition: spec})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Resource != "a" || fe.Field != "template.data.x" || !strings.Contains(err.Error(), "division by zero") {
		t.Fatalf("err = %v", err)
	}
}

func TestPlanGraph(t *testing.T) {
	p, err := NewPlan(composition(t, webapp), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := dag.Graph{"config": {}, "db": {}, "app": {"config", "db"}, "hpa": {"app"}}
	if d := cmp.Diff(want, p.Graph); d != "" {
		t.Errorf("graph (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"config", "db", "app", "hpa"}, p.Order); d != "" {
		t.Errorf("order (-want +got):\n%s", d)
	}
}

func TestCheckTargets(t *testing.T) {
	widget := &spec.Schema{}
	if err := json.Unmarshal([]byte(`{"type":"object","properties":{
		"metadata":{"type":"object"},
		"spec":{"type":"object","properties":{
			"size":{"type":"integer"},
			"name":{"type":"string"},
			"port":{"x-kubernetes-int-or-string":true},
			"tags":{"type":"array","items":{"type":"string"}},
			"labels":{"type":"object","additionalProperties":{"type":"string"}},
			"free":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}}}`), widget); err != nil {
		t.Fatal(err)
	}
	src := MapSchemaSource{{Group: "example.org", Version: "v1", Kind: "Widget"}: widget}
	cases := map[string]struct {
		spec string
		want []string
	}{
		"valid": {spec: `{size: "${xr.spec.replicas}", name: "w-${xr.spec.replicas}", port: "${xr.spec.image}", tags: ["${xr.spec.image}"], labels: {a: "${xr.spec.image}"}, free: {anything: 1}}`},
		"wrong type": {spec: `{size: "${xr.spec.image}"}`,
			want: []string{`resource "w"`, "template.spec.size", `"xr.spec.image"`, "expression gives string, field wants integer"}},
		"text into integer": {spec: `{size: "n${xr.spec.replicas}"}`, want: []string{"template.spec.size", "gives a string, field wants integer"}},
		"unknown field":     {spec: `{sise: 1}`, want: []string{"template.spec.sise", "Widget has no field sise"}},
		"bool into list":    {spec: `{tags: "${xr.spec.replicas > 1}"}`, want: []string{"expression gives bool, field wants array"}},
	}
	typ := xrTestType(t)
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := composition(t, "compositeTypeRef: {apiVersion: example.org/v1, kind: XApp}\nresources:\n- name: w\n  template: {apiVersion: example.org/v1, kind: Widget, spec: "+tc.spec+"}")
			p, err := NewPlan(c, typ)
			if err != nil {
				t.Fatal(err)
			}
			err = p.CheckTargets(c, src)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func xrTestType(t *testing.T) *apiservercel.DeclType {
	t.Helper()
	typ, err := cel.SchemaType(&apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
		"metadata": cel.ObjectMetaSchema(),
		"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"replicas": {Type: "integer"}, "image": {Type: "string"},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return typ
}

// TestDefaultReadiness: a composed resource without readyWhen is ready when
// kit/health calls it Current; before, any object without a Ready condition
// counted as ready as soon as it existed.
func TestDefaultReadiness(t *testing.T) {
	spec := composition(t, `
compositeTypeRef: {apiVersion: example.org/v1, kind: XApp}
resources:
- name: app
  template: {apiVersion: apps/v1, kind: Deployment, spec: {replicas: 2}}
`)
	xr := obj(t, xrYAML)
	const progressing = `{type: Progressing, status: "True", reason: NewReplicaSetAvailable}`
	cases := map[string]struct {
		observed    string
		wantReady   bool
		wantWaiting []string
		wantFailed  string // FailedMessage, when something failed
	}{
		"deployment without status": {
			observed:    `{apiVersion: apps/v1, kind: Deployment, metadata: {name: shop-app, generation: 1}, spec: {replicas: 2}}`,
			wantWaiting: []string{"app (Replicas: 0/2)"},
		},
		"deployment with 1 of 2 available": {
			observed: `{apiVersion: apps/v1, kind: Deployment, metadata: {name: shop-app, generation: 1}, spec: {replicas: 2},
				status: {observedGeneration: 1, replicas: 2, updatedReplicas: 2, readyReplicas: 1, availableReplicas: 1, conditions: [{type: Available, status: "True"}, ` + progressing + `]}}`,
			wantWaiting: []string{"app (Available: 1/2)"},
		},
		"deployment past its progress deadline": {
			observed: `{apiVersion: apps/v1, kind: Deployment, metadata: {name: shop-app, generation: 1}, spec: {replicas: 2},
				status: {observedGeneration: 1, conditions: [{type: Progressing, status: "False", reason: ProgressDeadlineExceeded}]}}`,
			wantWaiting: []string{"app (failed: Progress deadline exceeded)"},
			wantFailed:  "failed: app (failed: Progress deadline exceeded)",
		},
		"a managed resource refused, Stalled": {
			observed: `{apiVersion: postgresql.sql.strata.dev/v1alpha1, kind: Database, metadata: {name: shop-app, generation: 1},
				status: {conditions: [{type: Ready, status: "False", reason: ResourceConflict, message: 'external resource "shop" already exists'},
					{type: Stalled, status: "True", reason: ResourceConflict, message: 'external resource "shop" already exists'}]}}`,
			wantWaiting: []string{"app (ResourceConflict)"},
			wantFailed:  `failed: app (ResourceConflict): external resource "shop" already exists`,
		},
		"deployment available": {
			observed: `{apiVersion: apps/v1, kind: Deployment, metadata: {name: shop-app, generation: 1}, spec: {replicas: 2},
				status: {observedGeneration: 1, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2, conditions: [{type: Available, status: "True"}, ` + progressing + `]}}`,
			wantReady: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := Render(Input{XR: xr, Composition: spec, Observed: map[string]*unstructured.Unstructured{"app": obj(t, tc.observed)}})
			if err != nil {
				t.Fatal(err)
			}
			if out.Ready != tc.wantReady {
				t.Errorf("Ready = %v, want %v", out.Ready, tc.wantReady)
			}
			if d := cmp.Diff(tc.wantWaiting, out.Waiting); d != "" {
				t.Errorf("waiting (-want +got):\n%s", d)
			}
			if got := ""; len(out.Failed) > 0 {
				if got = out.FailedMessage(); got != tc.wantFailed {
					t.Errorf("FailedMessage = %q, want %q", got, tc.wantFailed)
				}
			} else if tc.wantFailed != "" {
				t.Errorf("nothing failed, want %q", tc.wantFailed)
			}
		})
	}
}

// TestFailedMessage: a composite whose resource failed names the failure,
// then what else it waits for, without naming the failed resource twice.
func TestFailedMessage(t *testing.T) {
	spec := composition(t, `
compositeTypeRef: {apiVersion: example.org/v1, kind: XApp}
resources:
- name: role
  template: {apiVersion: postgresql.sql.strata.dev/v1alpha1, kind: Role}
- name: db
  template: {apiVersion: postgresql.sql.strata.dev/v1alpha1, kind: Database, spec: {owner: "${role.metadata.name}"}}
`)
	role := obj(t, `{apiVersion: postgresql.sql.strata.dev/v1alpha1, kind: Role, metadata: {name: shop-role, generation: 1},
		status: {conditions: [{type: Ready, status: "False", reason: ProviderConfigNotAllowed, message: 'ProviderConfig "payments" may not be used'},
			{type: Stalled, status: "True", reason: ProviderConfigNotAllowed, message: 'ProviderConfig "payments" may not be used'}]}}`)
	out, err := Render(Input{XR: obj(t, xrYAML), Composition: spec, Observed: map[string]*unstructured.Unstructured{"role": role}})
	if err != nil {
		t.Fatal(err)
	}
	want := `failed: role (ProviderConfigNotAllowed): ProviderConfig "payments" may not be used; waiting for: db (waiting for role)`
	if got := out.FailedMessage(); got != want {
		t.Errorf("FailedMessage =\n%s\nwant\n%s", got, want)
	}
}

package xrd

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/strata-dev/strata/apis/apiextensions/v1alpha1"
)

func xrd(t *testing.T, schema string) *v1alpha1.CompositeResourceDefinition {
	t.Helper()
	x := &v1alpha1.CompositeResourceDefinition{}
	y := `
metadata: {name: xapps.example.org}
spec:
  group: example.org
  names: {kind: XApp, plural: xapps}
  claimNames: {kind: App, plural: apps}
  versions:
  - name: v1
    served: true
    referenceable: true
    additionalPrinterColumns: [{name: IMAGE, type: string, jsonPath: .spec.image}]
    schema:
      openAPIV3Schema: ` + schema
	if err := yaml.UnmarshalStrict([]byte(y), x); err != nil {
		t.Fatal(err)
	}
	return x
}

func TestCRDs(t *testing.T) {
	x := xrd(t, "{type: object, properties: {spec: {type: object, properties: {image: {type: string}}}, status: {type: object, properties: {url: {type: string}}}}}")
	xr, err := CompositeCRD(x)
	if err != nil {
		t.Fatal(err)
	}
	claim, err := ClaimCRD(x)
	if err != nil {
		t.Fatal(err)
	}
	var xrCols, claimCols []string
	for _, c := range xr.Spec.Versions[0].AdditionalPrinterColumns {
		xrCols = append(xrCols, c.Name)
	}
	for _, c := range claim.Spec.Versions[0].AdditionalPrinterColumns {
		claimCols = append(claimCols, c.Name)
	}
	if d := cmp.Diff([]string{"SYNCED", "READY", "COMPOSITION", "IMAGE", "AGE"}, xrCols); d != "" {
		t.Errorf("XR columns (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"SYNCED", "READY", "CONNECTION-SECRET", "IMAGE", "AGE"}, claimCols); d != "" {
		t.Errorf("claim columns (-want +got):\n%s", d)
	}
	if xr.Name != "xapps.example.org" || xr.Spec.Scope != "Cluster" || claim.Name != "apps.example.org" || claim.Spec.Scope != "Namespaced" {
		t.Errorf("names/scopes: %s %s %s %s", xr.Name, xr.Spec.Scope, claim.Name, claim.Spec.Scope)
	}
	xrSpec := xr.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties
	for _, f := range []string{"image", "compositionRef", "compositionSelector", "compositionRevisionRef", "compositionUpdatePolicy", "resourceRefs", "claimRef", "writeConnectionSecretToRef"} {
		if _, ok := xrSpec[f]; !ok {
			t.Errorf("XR spec has no %s", f)
		}
	}
	claimSpec := claim.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties
	for _, f := range []string{"image", "compositionRef", "resourceRef", "writeConnectionSecretToRef"} {
		if _, ok := claimSpec[f]; !ok {
			t.Errorf("claim spec has no %s", f)
		}
	}
	status := xr.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["status"].Properties
	for _, f := range []string{"url", "conditions", "observedGeneration", "resourceRefs"} {
		if _, ok := status[f]; !ok {
			t.Errorf("XR status has no %s", f)
		}
	}
	if xr.Spec.Versions[0].Subresources == nil || xr.Spec.Versions[0].Subresources.Status == nil || !xr.Spec.Versions[0].Storage {
		t.Error("XR version needs the status subresource and storage")
	}
	if _, err := XRType(x); err != nil {
		t.Errorf("XRType: %v", err)
	}
}

// TestNewClaimStatus: a claim kind defaults its status to Ready=False and
// Reconciling=True (reason Creating), so a claim reads as in progress before
// the controller first writes its status; an XR kind, or a claim kind whose
// status schema requires a field (the default would not validate), has no
// such default.
func TestNewClaimStatus(t *testing.T) {
	type cond struct{ Type, Status, Reason string }
	for name, tc := range map[string]struct {
		schema string
		claim  bool
		want   []cond
	}{
		"claim": {schema: "{type: object, properties: {status: {type: object, properties: {url: {type: string}}}}}", claim: true,
			want: []cond{{"Ready", "False", "Creating"}, {"Reconciling", "True", "Creating"}}},
		"claim without a status schema": {schema: "{type: object}", claim: true,
			want: []cond{{"Ready", "False", "Creating"}, {"Reconciling", "True", "Creating"}}},
		"XR":                           {schema: "{type: object}"},
		"claim with a required status": {schema: "{type: object, properties: {status: {type: object, required: [url], properties: {url: {type: string}}}}}", claim: true},
	} {
		t.Run(name, func(t *testing.T) {
			x := xrd(t, tc.schema)
			crd, err := CompositeCRD(x)
			if tc.claim {
				crd, err = ClaimCRD(x)
			}
			if err != nil {
				t.Fatal(err)
			}
			def := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["status"].Default
			var got struct{ Conditions []cond }
			if def != nil {
				if err := json.Unmarshal(def.Raw, &got); err != nil {
					t.Fatal(err)
				}
			}
			if d := cmp.Diff(tc.want, got.Conditions); d != "" {
				t.Errorf("default status conditions (-want +got):\n%s", d)
			}
		})
	}
}

func TestCRDErrors(t *testing.T) {
	cases := map[string]struct {
		schema string
		want   string
	}{
		"reserved spec":   {schema: "{type: object, properties: {spec: {type: object, properties: {claimRef: {type: string}}}}}", want: "spec.claimRef is reserved"},
		"reserved status": {schema: "{type: object, properties: {status: {type: object, properties: {conditions: {type: string}}}}}", want: "status.conditions is reserved"},
		"other top field": {schema: "{type: object, properties: {data: {type: object}}}", want: "only spec and status may be defined"},
		"not an object":   {schema: "{type: string}", want: "must be of type object"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := CompositeCRD(xrd(t, tc.schema))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

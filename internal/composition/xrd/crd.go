package xrd

import (
	"encoding/json"
	"fmt"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strata-dev/strata/apis/apiextensions/v1alpha1"
	"github.com/strata-dev/strata/internal/composition/cel"
	"github.com/strata-dev/strata/internal/conditions"
	apiservercel "k8s.io/apiserver/pkg/cel"
)

// Fields Strata reserves in the spec of composites and claims.
var (
	reservedXRSpec    = []string{"compositionRef", "compositionSelector", "compositionRevisionRef", "compositionUpdatePolicy", "resourceRefs", "claimRef", "writeConnectionSecretToRef"}
	reservedClaimSpec = []string{"compositionRef", "compositionSelector", "compositionRevisionRef", "compositionUpdatePolicy", "resourceRef", "writeConnectionSecretToRef"}
	reservedStatus    = []string{"conditions", "observedGeneration", "resourceRefs", "connectionDetails"}
)

func obj(props map[string]apiextensionsv1.JSONSchemaProps, required ...string) apiextensionsv1.JSONSchemaProps {
	return apiextensionsv1.JSONSchemaProps{Type: "object", Properties: props, Required: required}
}

var str = apiextensionsv1.JSONSchemaProps{Type: "string"}

func nameRef() apiextensionsv1.JSONSchemaProps {
	return obj(map[string]apiextensionsv1.JSONSchemaProps{"name": str}, "name")
}

func objectRef() apiextensionsv1.JSONSchemaProps {
	return obj(map[string]apiextensionsv1.JSONSchemaProps{"apiVersion": str, "kind": str, "name": str, "namespace": str})
}

func selector() apiextensionsv1.JSONSchemaProps {
	return obj(map[string]apiextensionsv1.JSONSchemaProps{"matchLabels": {
		Type: "object", AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{Allows: true, Schema: &str},
	}}, "matchLabels")
}

func updatePolicy() apiextensionsv1.JSONSchemaProps {
	return apiextensionsv1.JSONSchemaProps{Type: "string", Enum: []apiextensionsv1.JSON{{Raw: []byte(`"Automatic"`)}, {Raw: []byte(`"Manual"`)}}}
}

func conditionsSchema() apiextensionsv1.JSONSchemaProps {
	mapType := "map"
	return apiextensionsv1.JSONSchemaProps{
		Type:         "array",
		XListType:    &mapType,
		XListMapKeys: []string{"type"},
		Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: ptr(obj(map[string]apiextensionsv1.JSONSchemaProps{
			"type":               str,
			"status":             str,
			"reason":             str,
			"message":            str,
			"lastTransitionTime": {Type: "string", Format: "date-time"},
			"observedGeneration": {Type: "integer", Format: "int64"},
		}, "type", "status"))},
	}
}

func ptr[T any](v T) *T { return &v }

// newClaimStatus is the claim kind's default status: a claim the claim
// controller has not written status for yet (status cannot be set on create)
// reads as Ready=False and Reconciling=True, reason Creating, so kstatus and
// `kubectl get` see it as in progress from the moment it exists. The API
// server fills the default in when it reads the claim (from the request or
// from etcd), so this costs no write. Without it a claim would read as
// Current until its first status write, and the controller would have to
// write that status early (Options.ClaimGrace) for every claim whose
// composite resource is slow to report. lastTransitionTime is left out (a
// default is a constant); the controller reads a missing one as the claim's
// creation time. Claims whose status schema requires fields get no default
// (it would not validate) and keep the early write.
var newClaimStatus = mustJSON(map[string]any{"conditions": []map[string]string{
	{"type": conditions.Ready, "status": string(metav1.ConditionFalse), "reason": conditions.ReasonCreating, "message": "waiting for the composite resource to report"},
	{"type": conditions.Reconciling, "status": string(metav1.ConditionTrue), "reason": conditions.ReasonCreating, "message": "waiting for the composite resource to report"},
}})

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func reservedSpec(claim bool) map[string]apiextensionsv1.JSONSchemaProps {
	m := map[string]apiextensionsv1.JSONSchemaProps{
		"compositionRef":          nameRef(),
		"compositionSelector":     selector(),
		"compositionRevisionRef":  nameRef(),
		"compositionUpdatePolicy": updatePolicy(),
	}
	if claim {
		m["resourceRef"] = objectRef()
		m["writeConnectionSecretToRef"] = nameRef()
	} else {
		m["resourceRefs"] = apiextensionsv1.JSONSchemaProps{Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: ptr(objectRef())}}
		m["claimRef"] = objectRef()
		m["writeConnectionSecretToRef"] = obj(map[string]apiextensionsv1.JSONSchemaProps{"name": str, "namespace": str}, "name")
	}
	return m
}

func reservedStatusProps() map[string]apiextensionsv1.JSONSchemaProps {
	return map[string]apiextensionsv1.JSONSchemaProps{
		"conditions":         conditionsSchema(),
		"observedGeneration": {Type: "integer", Format: "int64"},
		"resourceRefs":       {Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: ptr(objectRef())}},
		"connectionDetails": obj(map[string]apiextensionsv1.JSONSchemaProps{
			"lastPublishedTime": {Type: "string", Format: "date-time"},
		}),
	}
}

// userSchema decodes a version's schema.
func userSchema(v *v1alpha1.CompositeResourceDefinitionVersion) (*apiextensionsv1.JSONSchemaProps, error) {
	s := &apiextensionsv1.JSONSchemaProps{Type: "object"}
	if v.Schema != nil && len(v.Schema.OpenAPIV3Schema.Raw) > 0 {
		if err := json.Unmarshal(v.Schema.OpenAPIV3Schema.Raw, s); err != nil {
			return nil, fmt.Errorf("version %s: cannot decode openAPIV3Schema: %w", v.Name, err)
		}
	}
	return s, nil
}

// objectSchema builds the whole object schema of one version for the XR
// (claim=false) or claim kind.
func objectSchema(v *v1alpha1.CompositeResourceDefinitionVersion, claim bool) (*apiextensionsv1.JSONSchemaProps, error) {
	user, err := userSchema(v)
	if err != nil {
		return nil, err
	}
	if user.Type != "" && user.Type != "object" {
		return nil, fmt.Errorf("version %s: openAPIV3Schema must be of type object", v.Name)
	}
	for k := range user.Properties {
		if k != "spec" && k != "status" {
			return nil, fmt.Errorf("version %s: openAPIV3Schema.properties.%s: only spec and status may be defined", v.Name, k)
		}
	}
	spec := user.Properties["spec"]
	status := user.Properties["status"]
	if spec.Type == "" {
		spec.Type = "object"
	}
	if status.Type == "" {
		status.Type = "object"
	}
	spec.Properties = copyProps(spec.Properties)
	status.Properties = copyProps(status.Properties)
	for k, p := range reservedSpec(claim) {
		if _, clash := spec.Properties[k]; clash {
			return nil, fmt.Errorf("version %s: spec.%s is reserved by Strata", v.Name, k)
		}
		spec.Properties[k] = p
	}
	reserved := reservedStatusProps()
	if claim {
		// The XR the claim is bound to (spec.resourceRef, when set, chooses it).
		reserved["resourceRef"] = objectRef()
	}
	for k, p := range reserved {
		if _, clash := status.Properties[k]; clash {
			return nil, fmt.Errorf("version %s: status.%s is reserved by Strata", v.Name, k)
		}
		status.Properties[k] = p
	}
	if claim && status.Default == nil && len(status.Required) == 0 {
		status.Default = &apiextensionsv1.JSON{Raw: newClaimStatus}
	}
	out := &apiextensionsv1.JSONSchemaProps{
		Type:        "object",
		Description: user.Description,
		Required:    []string{"spec"},
		Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"apiVersion": str,
			"kind":       str,
			"metadata":   {Type: "object"},
			"spec":       spec,
			"status":     status,
		},
	}
	return out, nil
}

func copyProps(in map[string]apiextensionsv1.JSONSchemaProps) map[string]apiextensionsv1.JSONSchemaProps {
	out := make(map[string]apiextensionsv1.JSONSchemaProps, len(in)+8)
	for k, v := range in {
		out[k] = v
	}
	return out
}

func condColumn(name, typ string) apiextensionsv1.CustomResourceColumnDefinition {
	return apiextensionsv1.CustomResourceColumnDefinition{Name: name, Type: "string", JSONPath: fmt.Sprintf(".status.conditions[?(@.type=='%s')].status", typ)}
}

// CompositeCRD returns the CRD of the XR kind.
func CompositeCRD(x *v1alpha1.CompositeResourceDefinition) (*apiextensionsv1.CustomResourceDefinition, error) {
	names := x.Spec.Names
	names.Categories = appendUnique(names.Categories, "composite")
	scope := apiextensionsv1.ClusterScoped
	if x.Spec.Scope == v1alpha1.ScopeNamespaced {
		scope = apiextensionsv1.NamespaceScoped
	}
	cols := []apiextensionsv1.CustomResourceColumnDefinition{
		condColumn("SYNCED", "Synced"), condColumn("READY", "Ready"),
		{Name: "COMPOSITION", Type: "string", JSONPath: ".spec.compositionRef.name"},
	}
	return build(x, names, scope, false, cols)
}

// ClaimCRD returns the CRD of the claim kind, or nil without claimNames.
func ClaimCRD(x *v1alpha1.CompositeResourceDefinition) (*apiextensionsv1.CustomResourceDefinition, error) {
	if x.Spec.ClaimNames == nil {
		return nil, nil
	}
	names := *x.Spec.ClaimNames
	names.Categories = appendUnique(names.Categories, "claim")
	cols := []apiextensionsv1.CustomResourceColumnDefinition{
		condColumn("SYNCED", "Synced"), condColumn("READY", "Ready"),
		{Name: "CONNECTION-SECRET", Type: "string", JSONPath: ".spec.writeConnectionSecretToRef.name"},
	}
	return build(x, names, apiextensionsv1.NamespaceScoped, true, cols)
}

func build(x *v1alpha1.CompositeResourceDefinition, names apiextensionsv1.CustomResourceDefinitionNames, scope apiextensionsv1.ResourceScope, claim bool, cols []apiextensionsv1.CustomResourceColumnDefinition) (*apiextensionsv1.CustomResourceDefinition, error) {
	if names.ListKind == "" {
		names.ListKind = names.Kind + "List"
	}
	if names.Singular == "" {
		names.Singular = lower(names.Kind)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{
		TypeMeta: metav1.TypeMeta{APIVersion: apiextensionsv1.SchemeGroupVersion.String(), Kind: "CustomResourceDefinition"},
		ObjectMeta: metav1.ObjectMeta{
			Name:   names.Plural + "." + x.Spec.Group,
			Labels: map[string]string{LabelXRD: x.Name},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: v1alpha1.GroupVersion.String(), Kind: "CompositeResourceDefinition",
				Name: x.Name, UID: x.UID, Controller: ptr(true), BlockOwnerDeletion: ptr(true),
			}},
		},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: x.Spec.Group, Names: names, Scope: scope},
	}
	ref := x.ReferenceableVersion()
	for i := range x.Spec.Versions {
		v := &x.Spec.Versions[i]
		s, err := objectSchema(v, claim)
		if err != nil {
			return nil, err
		}
		vcols := append(append([]apiextensionsv1.CustomResourceColumnDefinition{}, cols...), v.AdditionalPrinterColumns...)
		vcols = append(vcols, apiextensionsv1.CustomResourceColumnDefinition{Name: "AGE", Type: "date", JSONPath: ".metadata.creationTimestamp"})
		crd.Spec.Versions = append(crd.Spec.Versions, apiextensionsv1.CustomResourceDefinitionVersion{
			Name:                     v.Name,
			Served:                   v.Served,
			Storage:                  v == ref,
			Schema:                   &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: s},
			Subresources:             &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
			AdditionalPrinterColumns: vcols,
		})
	}
	return crd, nil
}

// LabelXRD is set on generated CRDs to the XRD's name.
const LabelXRD = "strata.dev/xrd"

// XRType returns the CEL type of the XR kind's referenceable version, for
// publish-time checking of Compositions.
func XRType(x *v1alpha1.CompositeResourceDefinition) (*apiservercel.DeclType, error) {
	v := x.ReferenceableVersion()
	if v == nil {
		return nil, fmt.Errorf("XRD %s has no versions", x.Name)
	}
	s, err := objectSchema(v, false)
	if err != nil {
		return nil, err
	}
	s.Properties["metadata"] = cel.ObjectMetaSchema()
	return cel.SchemaType(s)
}

func appendUnique(l []string, s string) []string {
	for _, e := range l {
		if e == s {
			return l
		}
	}
	return append(l, s)
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

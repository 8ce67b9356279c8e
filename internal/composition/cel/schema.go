package cel

import (
	"fmt"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel/model"
	apiservercel "k8s.io/apiserver/pkg/cel"
)

// SchemaType turns the OpenAPI schema of a whole object into a CEL type, so
// expressions reading it are checked field by field. The schema describes
// metadata itself (see ObjectMetaSchema).
func SchemaType(s *apiextensionsv1.JSONSchemaProps) (*apiservercel.DeclType, error) {
	internal := &apiextensions.JSONSchemaProps{}
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(s, internal, nil); err != nil {
		return nil, fmt.Errorf("cannot convert schema: %w", err)
	}
	st, err := structuralschema.NewStructural(internal)
	if err != nil {
		return nil, fmt.Errorf("schema is not structural: %w", err)
	}
	t := model.SchemaDeclType(st, false)
	if t == nil {
		return nil, fmt.Errorf("schema has no CEL type")
	}
	return t, nil
}

// ObjectMetaSchema is the part of metadata that expressions may read.
func ObjectMetaSchema() apiextensionsv1.JSONSchemaProps {
	str := apiextensionsv1.JSONSchemaProps{Type: "string"}
	strMap := apiextensionsv1.JSONSchemaProps{Type: "object", AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{Allows: true, Schema: &str}}
	return apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
		"name": str, "generateName": str, "namespace": str, "uid": str, "resourceVersion": str,
		"generation": {Type: "integer", Format: "int64"}, "creationTimestamp": str,
		"labels": strMap, "annotations": strMap,
	}}
}

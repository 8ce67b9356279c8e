package cli

import (
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// cliAPIVersion versions the documents that trace, render, validate and
// diff print with -o json|yaml (docs/cli.md, "Machine-readable output"):
// fields are only ever added within a version.
const cliAPIVersion = "cli.strata.dev/v1alpha1"

// kubectlName is how `kubectl get -o name` names an object: the lower-case
// kind, then ".group" for kinds outside the core group, then "/name"
// (configmap/settings, deployment.apps/web, sync.gitops.strata.dev/app).
// strata's KIND/NAME arguments accept it back.
func kubectlName(gvk schema.GroupVersionKind, name string) string {
	return kubectlKind(gvk) + "/" + name
}

// kubectlKind is the kind part of kubectlName: kind, or kind.group.
func kubectlKind(gvk schema.GroupVersionKind) string {
	k := strings.ToLower(gvk.Kind)
	if gvk.Group != "" {
		k += "." + gvk.Group
	}
	return k
}

// apiVersionKindName is kubectlName for an apiVersion string.
func apiVersionKindName(apiVersion, kind, name string) string {
	gv, _ := schema.ParseGroupVersion(apiVersion)
	return kubectlName(gv.WithKind(kind), name)
}

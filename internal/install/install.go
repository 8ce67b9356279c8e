package install

import (
	"context"
	"fmt"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/strata-dev/strata/apis/crds"
)

// FieldManager is the server-side apply field manager for everything Strata writes.
const FieldManager = "strata"

// CRDs applies every embedded CRD and waits until each is Established.
// It returns how many CRDs it applied.
func CRDs(ctx context.Context, cfg *rest.Config) (int, error) {
	list, err := crds.All()
	if err != nil {
		return 0, err
	}
	return len(list), Apply(ctx, cfg, list)
}

// Apply applies the given CRDs and waits until each is Established.
func Apply(ctx context.Context, cfg *rest.Config, list []*apiextensionsv1.CustomResourceDefinition) error {
	return applyCRDs(ctx, cfg, list, FieldManager)
}

func applyCRDs(ctx context.Context, cfg *rest.Config, list []*apiextensionsv1.CustomResourceDefinition, fieldManager string) error {
	cs, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("cannot build apiextensions client: %w", err)
	}
	force := true
	for _, crd := range list {
		crd = crd.DeepCopy()
		crd.APIVersion = apiextensionsv1.SchemeGroupVersion.String()
		crd.Kind = "CustomResourceDefinition"
		data, err := yaml.Marshal(crd)
		if err != nil {
			return fmt.Errorf("cannot encode CRD %s: %w", crd.Name, err)
		}
		js, err := yaml.YAMLToJSON(data)
		if err != nil {
			return fmt.Errorf("cannot encode CRD %s: %w", crd.Name, err)
		}
		_, err = cs.ApiextensionsV1().CustomResourceDefinitions().Patch(ctx, crd.Name, "application/apply-patch+yaml", js,
			metav1.PatchOptions{FieldManager: fieldManager, Force: &force})
		if err != nil {
			return fmt.Errorf("cannot apply CRD %s: %w", crd.Name, err)
		}
	}
	for _, crd := range list {
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
			got, err := cs.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
			if err != nil {
				return false, nil //nolint:nilerr // keep polling until the deadline
			}
			for _, c := range got.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("CRD %s did not become established: %w", crd.Name, err)
		}
	}
	return nil
}

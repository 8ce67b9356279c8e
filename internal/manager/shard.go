package manager

import (
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/managed"
)

// shardCache restricts the manager's cache to the objects of one shard:
// Syncs, GitRepositories and every managed resource kind in sch match
// selector; everything else (XRDs, Compositions, ProviderConfigs,
// Secrets...) is seen whole by every shard. The composition engine's own
// caches (claims, composites, composed resources) take the selector from
// its options.
func shardCache(sch *runtime.Scheme, selector string) (cache.Options, error) {
	if selector == "" {
		return cache.Options{}, nil
	}
	sel, err := parseSelector(selector)
	if err != nil {
		return cache.Options{}, err
	}
	by := map[client.Object]cache.ByObject{
		&gitopsv1.Sync{}:          {Label: sel},
		&gitopsv1.GitRepository{}: {Label: sel},
	}
	for _, t := range sch.AllKnownTypes() {
		o, ok := reflect.New(t).Interface().(managed.Managed)
		if ok {
			by[o] = cache.ByObject{Label: sel}
		}
	}
	return cache.Options{ByObject: by}, nil
}

func parseSelector(s string) (labels.Selector, error) {
	sel, err := labels.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid --watch-label-selector %q: %w", s, err)
	}
	return sel, nil
}

package benchutil

import (
	"path/filepath"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// RESTConfig is the cluster's admin config (from its kubeconfig), for
// benchmarks that read the API server's own metrics.
func (u *Up) RESTConfig(tb testing.TB) *rest.Config {
	tb.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(u.dir, "kubeconfig"))
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

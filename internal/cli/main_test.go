package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/strata-dev/strata/internal/testenv"
)

var env *testenv.Env

// TestMain starts one API server for the package and points KUBECONFIG at
// it, so commands run as a user runs them.
func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, &env, startWithKubeconfig))
}

func startWithKubeconfig() (*testenv.Env, error) {
	e, err := testenv.Start()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "strata-cli-test-")
	if err != nil {
		e.Stop()
		return nil, err
	}
	if err := startControllers(e); err != nil {
		e.Stop()
		return nil, err
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(e, path); err != nil {
		e.Stop()
		return nil, err
	}
	if err := os.Setenv("KUBECONFIG", path); err != nil {
		e.Stop()
		return nil, err
	}
	return e, nil
}

// writeKubeconfig writes a kubeconfig for the API server of e to path.
func writeKubeconfig(e *testenv.Env, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: e.Config.Host, CertificateAuthorityData: e.Config.CAData}
	kc.AuthInfos["test"] = &clientcmdapi.AuthInfo{ClientCertificateData: e.Config.CertData, ClientKeyData: e.Config.KeyData, Token: e.Config.BearerToken}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test"}
	kc.CurrentContext = "test"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("cannot write kubeconfig: %w", err)
	}
	return nil
}

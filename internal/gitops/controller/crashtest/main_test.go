package crashtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/strata-dev/strata/internal/cli"
	"github.com/strata-dev/strata/internal/testenv"
)

var env *testenv.Env

// managerEnv, when set, makes the test binary run `strata <its value>`
// instead of the tests: the manager a test starts and kills.
const managerEnv = "STRATA_CRASHTEST_MANAGER"

// managerArgs run only the delivery controllers, without leader election (a
// killed leader's lease would hold the restart back for its whole duration)
// and without fixed ports. Its Git server is on this machine's loopback, so
// the loopback is left out of the denied networks, as under strata up.
const managerArgs = "manager --leader-elect=false --subsystems=gitops --metrics-bind-address=0 --health-probe-bind-address=0 --webhook-bind-address=127.0.0.1:0 --max-reconciles=4 --egress-denied-networks=link-local,metadata"

func TestMain(m *testing.M) {
	if args := os.Getenv(managerEnv); args != "" {
		cmd := cli.NewRootCommand()
		cmd.SetArgs(strings.Fields(args))
		if err := cmd.ExecuteContext(context.Background()); err != nil {
			fmt.Fprintf(os.Stderr, "strata: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(testenv.Main(m, &env, testenv.Start))
}

// writeKubeconfig writes cfg (the test API server's admin) as a kubeconfig.
func writeKubeconfig(t *testing.T, cfg *rest.Config, path string) {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "admin"}
	kc.CurrentContext = "test"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
}

// managerProcess is a running `strata manager`.
type managerProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startManager runs `strata manager` against the cluster of kubeconfig,
// appending its output to logPath. Its temporary files (the artifact store)
// go under tmp, so each start has an empty store as a restarted pod does.
func startManager(t *testing.T, kubeconfig, tmp, logPath string) *managerProcess {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "----- manager started at %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), managerEnv+"="+managerArgs, "KUBECONFIG="+kubeconfig, "TMPDIR="+tmp)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("cannot start the manager: %v", err)
	}
	p := &managerProcess{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p
}

// kill sends SIGKILL and waits until the process is gone.
func (p *managerProcess) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("manager %d still running 30s after SIGKILL", p.cmd.Process.Pid)
	}
}

// exited reports whether the process has ended.
func (p *managerProcess) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// logTail returns the end of the manager log for a failure message.
func logTail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

func tempDir(t *testing.T, name string) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

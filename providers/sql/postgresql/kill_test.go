package postgresql_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/managed"
	"github.com/strata-dev/strata/internal/scheme"
	mt "github.com/strata-dev/strata/internal/testenv/managedtest"
	pgv1 "github.com/strata-dev/strata/providers/sql/apis/postgresql/v1alpha1"
	"github.com/strata-dev/strata/providers/sql/postgresql"
)

// childKubeconfig, when set, makes the test binary run only a manager with
// the postgresql controllers against that kubeconfig: the process the kill
// test SIGKILLs.
const childKubeconfig = "STRATA_TEST_CHILD_KUBECONFIG"

func runChildManager() int {
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv(childKubeconfig))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg.QPS, cfg.Burst = 200, 400
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme.New(), Metrics: metricsserver.Options{BindAddress: "0"}})
	if err == nil {
		err = postgresql.Setup(mgr, managed.Options{Workers: 10})
	}
	if err == nil {
		err = mgr.Start(ctrl.SetupSignalHandler())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func writeKubeconfig(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["u"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	kc.CurrentContext = "c"
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func startChild(t *testing.T, kubeconfig string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childKubeconfig+"="+kubeconfig)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) })
	return cmd
}

// TestKillManagerMidCreate SIGKILLs the manager while it creates 100
// databases, restarts it, and checks that exactly 100 databases exist, none
// twice and none failed, and that deleting the resources removes them all.
func TestKillManagerMidCreate(t *testing.T) {
	const n = 100
	db := admin(t)
	ctx := context.Background()
	sfx := mt.Suffix()
	pc := providerConfig(t, "pg-"+sfx, "")
	prefix := "kill-" + sfx + "-"
	count := func() int {
		var c int
		if err := db.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname LIKE $1", prefix+"%").Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Cleanup(func() {
		rows, _ := db.Query(ctx, "SELECT datname FROM pg_database WHERE datname LIKE $1", prefix+"%")
		var names []string
		for rows.Next() {
			var s string
			_ = rows.Scan(&s)
			names = append(names, s)
		}
		rows.Close()
		for _, s := range names {
			_, _ = db.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %q WITH (FORCE)", s))
		}
	})
	for i := range n {
		d := &pgv1.Database{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s%03d", prefix, i)}, Spec: pgv1.DatabaseSpec{ResourceSpec: spec(pc.Name)}}
		if err := env.Client.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	kubeconfig := writeKubeconfig(t, env.Config)
	first := startChild(t, kubeconfig)
	mt.Eventually(t, 2*time.Minute, "some databases created", func() error {
		if c := count(); c < 25 {
			return fmt.Errorf("%d created", c)
		}
		return nil
	})
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	killedAt := count()
	t.Logf("killed the manager with %d of %d databases created", killedAt, n)
	if killedAt == n {
		t.Log("every database existed before the kill; the restart only re-observes them")
	}

	restarted := time.Now()
	startChild(t, kubeconfig)
	defer func() { t.Logf("after the restart: %s", time.Since(restarted).Round(time.Second)) }()
	mt.Eventually(t, 3*time.Minute, "all Databases Ready", func() error {
		l := &pgv1.DatabaseList{}
		if err := env.Client.List(ctx, l); err != nil {
			return err
		}
		ready := 0
		for i := range l.Items {
			if l.Items[i].Spec.ProviderConfigReference.Name == pc.Name && conditions.IsTrue(&l.Items[i], conditions.Ready) {
				ready++
			}
		}
		if ready != n {
			return fmt.Errorf("%d of %d Ready", ready, n)
		}
		return nil
	})
	if c := count(); c != n {
		t.Fatalf("%d databases on the server, want exactly %d", c, n)
	}
	l := &pgv1.DatabaseList{}
	if err := env.Client.List(ctx, l); err != nil {
		t.Fatal(err)
	}
	for i := range l.Items {
		d := &l.Items[i]
		if d.Spec.ProviderConfigReference.Name != pc.Name {
			continue
		}
		if d.Status.CreatedAt == nil {
			t.Errorf("%s has no status.createdAt (the success of its create is not recorded)", d.Name)
		}
		if err := env.Client.Delete(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	mt.Eventually(t, 3*time.Minute, "all Databases deleted", func() error {
		l := &pgv1.DatabaseList{}
		if err := env.Client.List(ctx, l); err != nil {
			return err
		}
		left := 0
		for i := range l.Items {
			if l.Items[i].Spec.ProviderConfigReference.Name == pc.Name {
				left++
			}
		}
		if left > 0 {
			return fmt.Errorf("%d left", left)
		}
		return nil
	})
	if c := count(); c != 0 {
		t.Errorf("%d databases left on the server after delete", c)
	}
}

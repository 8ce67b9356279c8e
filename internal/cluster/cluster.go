package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const (
	// localControllerQPS and localControllerBurst are the client limits of
	// kube-controller-manager and kube-scheduler.
	localControllerQPS   = "500"
	localControllerBurst = "1000"

	serviceCIDR = "10.0.0.0/24"
	serviceIP   = "10.0.0.1"
	// NodeName is the name of the simulated node kwok manages.
	NodeName = "strata-node-0"
)

// tokenUser is an identity in the API server's static token file.
type tokenUser struct {
	name   string
	groups string
}

var tokenUsers = []tokenUser{
	{name: "admin", groups: "system:masters"},
	{name: "system:kube-controller-manager"},
	{name: "system:kube-scheduler"},
	{name: "kwok", groups: "system:masters"},
}

// Config says where a cluster lives and how it is reached.
type Config struct {
	// StateDir holds everything the cluster keeps. Required.
	StateDir string
	// BinDir holds the binaries built by `make tools`. Required.
	BinDir string
	// Port is the API server's port; 0 keeps the last one or picks a free one.
	Port int
	// Progress receives short progress lines; nil discards them.
	Progress io.Writer
	// StartTimeout bounds how long Start waits for the API server. Default 60s.
	StartTimeout time.Duration
	// APIServerProfiling serves the API server's /debug/pprof endpoints (to
	// the admin user only, as RBAC allows nobody else), for finding out where
	// its CPU goes under load. Off by default, as in a production cluster.
	APIServerProfiling bool
}

// Cluster is a running local control plane.
type Cluster struct {
	cfg   Config
	lock  *lock
	state *state
	procs []*process
	pki   pki

	// RESTConfig reaches the API server as the admin user.
	RESTConfig *rest.Config
}

// KubeconfigPath is where the admin kubeconfig is written.
func (c *Cluster) KubeconfigPath() string { return KubeconfigPath(c.cfg.StateDir) }

// KubeconfigPath is where a cluster in stateDir writes its admin kubeconfig.
func KubeconfigPath(stateDir string) string { return filepath.Join(stateDir, "kubeconfig") }

// Start brings the control plane up and waits until the API server is ready
// and the simulated node is registered. On error everything started is
// stopped again.
func Start(ctx context.Context, cfg Config) (_ *Cluster, err error) {
	if cfg.StateDir == "" || cfg.BinDir == "" {
		return nil, errors.New("cluster config needs a state directory and a binary directory")
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	if cfg.StateDir, err = filepath.Abs(cfg.StateDir); err != nil {
		return nil, fmt.Errorf("cannot resolve state directory: %w", err)
	}
	if cfg.BinDir, err = filepath.Abs(cfg.BinDir); err != nil {
		return nil, fmt.Errorf("cannot resolve binary directory: %w", err)
	}
	c := &Cluster{cfg: cfg, pki: pki{dir: filepath.Join(cfg.StateDir, "pki")}}
	for _, bin := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"} {
		if _, err := c.binary(bin); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{cfg.StateDir, filepath.Join(cfg.StateDir, "logs")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("cannot create %s: %w", d, err)
		}
	}
	if c.lock, err = acquireLock(cfg.StateDir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	if c.state, err = c.loadState(); err != nil {
		return nil, err
	}
	c.reapStale(ctx)
	if err := c.choosePorts(); err != nil {
		return nil, err
	}
	if err := c.saveState(); err != nil {
		return nil, err
	}
	if err := c.pki.ensure(); err != nil {
		return nil, err
	}
	if err := c.writeKubeconfigs(); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	for _, phase := range []struct {
		name string
		run  func(context.Context) error
	}{
		{"etcd", c.startEtcd},
		{"kube-apiserver", c.startAPIServer},
		{"controllers", c.startControllers},
		{"node", c.registerNode},
	} {
		if err := phase.run(ctx); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Cluster) progress(format string, args ...any) {
	if c.cfg.Progress != nil {
		fmt.Fprintf(c.cfg.Progress, format+"\n", args...)
	}
}

func (c *Cluster) startEtcd(ctx context.Context) error {
	c.progress("starting etcd on 127.0.0.1:%d", c.state.EtcdPort)
	client := "http://127.0.0.1:" + strconv.Itoa(c.state.EtcdPort)
	peer := "http://127.0.0.1:" + strconv.Itoa(c.state.EtcdPeerPort)
	p, err := c.start("etcd",
		"--name=strata",
		"--data-dir="+filepath.Join(c.cfg.StateDir, "etcd"),
		"--listen-client-urls="+client,
		"--advertise-client-urls="+client,
		"--listen-peer-urls="+peer,
		"--initial-advertise-peer-urls="+peer,
		"--initial-cluster=strata="+peer,
		"--listen-metrics-urls=",
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	return c.waitHTTP(ctx, p, client+"/health", nil)
}

func (c *Cluster) startAPIServer(ctx context.Context) error {
	c.progress("starting kube-apiserver on https://127.0.0.1:%d", c.state.APIServerPort)
	tokens := filepath.Join(c.cfg.StateDir, "pki", "tokens.csv")
	if err := c.writeTokenFile(tokens); err != nil {
		return err
	}
	p, err := c.start("kube-apiserver",
		"--etcd-servers=http://127.0.0.1:"+strconv.Itoa(c.state.EtcdPort),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(c.state.APIServerPort),
		"--tls-cert-file="+c.pki.servingCert(),
		"--tls-private-key-file="+c.pki.servingKey(),
		"--client-ca-file="+c.pki.caCert(),
		"--token-auth-file="+tokens,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+c.pki.serviceAccountPub(),
		"--service-account-signing-key-file="+c.pki.serviceAccountKey(),
		"--service-cluster-ip-range="+serviceCIDR,
		"--allow-privileged=true",
		// The only address is loopback, which the kubernetes Service's
		// endpoints may not hold; nothing in the local cluster needs them.
		"--endpoint-reconciler-type=none",
		"--profiling="+strconv.FormatBool(c.cfg.APIServerProfiling),
	)
	if err != nil {
		return err
	}
	rc, err := c.restConfig("admin")
	if err != nil {
		return err
	}
	c.RESTConfig = rc
	httpClient, err := rest.HTTPClientFor(rc)
	if err != nil {
		return fmt.Errorf("cannot build API server client: %w", err)
	}
	return c.waitHTTP(ctx, p, fmt.Sprintf("https://127.0.0.1:%d/readyz", c.state.APIServerPort), httpClient)
}

func (c *Cluster) startControllers(_ context.Context) error {
	c.progress("starting kube-controller-manager, kube-scheduler and kwok")
	kc := func(user string) string { return filepath.Join(c.cfg.StateDir, "pki", user+".kubeconfig") }
	if _, err := c.start("kube-controller-manager",
		"--kubeconfig="+kc("system:kube-controller-manager"),
		"--secure-port=0",
		"--leader-elect=false",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+c.pki.serviceAccountKey(),
		"--root-ca-file="+c.pki.caCert(),
		"--cluster-signing-cert-file="+c.pki.caCert(),
		"--cluster-signing-key-file="+c.pki.caKey(),
		"--service-cluster-ip-range="+serviceCIDR,
		"--concurrent-gc-syncs=5",
		// Its client's default, 20 requests per second, made a hundred
		// Deployments' pods wait on kube-controller-manager itself rather
		// than on the API server (whose priority and fairness queues
		// protect it); so does the scheduler's 50 for their bindings.
		"--kube-api-qps="+localControllerQPS,
		"--kube-api-burst="+localControllerBurst,
		"--profiling=false",
	); err != nil {
		return err
	}
	if _, err := c.start("kube-scheduler",
		"--kubeconfig="+kc("system:kube-scheduler"),
		"--secure-port=0",
		"--leader-elect=false",
		"--kube-api-qps="+localControllerQPS,
		"--kube-api-burst="+localControllerBurst,
		"--profiling=false",
	); err != nil {
		return err
	}
	stages := filepath.Join(c.cfg.BinDir, "kwok-stages.yaml")
	if _, err := os.Stat(stages); err != nil {
		return fmt.Errorf("kwok stages %s not found: run `make tools`", stages)
	}
	extra, err := c.writeStages()
	if err != nil {
		return err
	}
	_, err = c.start("kwok",
		"--kubeconfig="+kc("kwok"),
		"--config="+stages,
		"--config="+extra,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--node-ip=10.1.0.1",
		"--cidr=10.1.0.0/16",
		"--server-address=",
	)
	return err
}

// registerNode creates the simulated node kwok keeps Ready, unless it exists.
func (c *Cluster) registerNode(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		return fmt.Errorf("cannot build clientset: %w", err)
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        NodeName,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels: map[string]string{
				"kubernetes.io/hostname": NodeName, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
				"type": "kwok",
			},
		},
		Status: corev1.NodeStatus{
			Allocatable: capacity(),
			Capacity:    capacity(),
		},
	}
	_, err = cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("cannot register node %s: %w", NodeName, err)
	}
	c.progress("node %s registered (simulated by kwok)", NodeName)
	return nil
}

func capacity() corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("1000"),
	}
}

// waitHTTP polls url until it answers 200, the child exits or ctx ends.
func (c *Cluster) waitHTTP(ctx context.Context, p *process, url string, client *http.Client) error {
	if client == nil {
		client = http.DefaultClient
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if err := p.exited(); err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("%s answered %s", url, resp.Status)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not become ready (last: %v); see %s", p.name, last, p.log.Name())
		case <-tick.C:
		}
	}
}

// Done is closed when any child exits on its own; Err then says which.
func (c *Cluster) Done() <-chan struct{} {
	ch := make(chan struct{})
	for _, p := range c.procs {
		go func() {
			<-p.done
			select {
			case <-ch:
			default:
				close(ch)
			}
		}()
	}
	return ch
}

// Err reports the first child that has exited, if any.
func (c *Cluster) Err() error {
	for _, p := range c.procs {
		if err := p.exited(); err != nil {
			return err
		}
	}
	return nil
}

// Stop stops the children in reverse start order and releases the state
// directory. It is safe to call more than once.
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].stop(15 * time.Second)
	}
	c.procs = nil
	if c.state != nil {
		c.state.Children = map[string]int{}
		_ = c.saveState()
	}
	c.lock.release()
	c.lock = nil
}

func (c *Cluster) writeTokenFile(path string) error {
	var b []byte
	for i, u := range tokenUsers {
		line := fmt.Sprintf("%s,%s,uid-%d", c.state.Tokens[u.name], u.name, i)
		if u.groups != "" {
			line += fmt.Sprintf(",%q", u.groups)
		}
		b = append(b, line+"\n"...)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("cannot write token file: %w", err)
	}
	return nil
}

func (c *Cluster) server() string {
	return fmt.Sprintf("https://127.0.0.1:%d", c.state.APIServerPort)
}

func (c *Cluster) kubeconfig(user string) (*clientcmdapi.Config, error) {
	ca, err := os.ReadFile(c.pki.caCert())
	if err != nil {
		return nil, fmt.Errorf("cannot read CA certificate: %w", err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["strata"] = &clientcmdapi.Cluster{Server: c.server(), CertificateAuthorityData: ca}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: c.state.Tokens[user]}
	cfg.Contexts["strata"] = &clientcmdapi.Context{Cluster: "strata", AuthInfo: user}
	cfg.CurrentContext = "strata"
	return cfg, nil
}

func (c *Cluster) restConfig(user string) (*rest.Config, error) {
	kc, err := c.kubeconfig(user)
	if err != nil {
		return nil, err
	}
	rc, err := clientcmd.NewDefaultClientConfig(*kc, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("cannot build client config: %w", err)
	}
	return rc, nil
}

func (c *Cluster) writeKubeconfigs() error {
	for _, u := range tokenUsers {
		kc, err := c.kubeconfig(u.name)
		if err != nil {
			return err
		}
		path := filepath.Join(c.cfg.StateDir, "pki", u.name+".kubeconfig")
		if u.name == "admin" {
			path = c.KubeconfigPath()
		}
		if err := clientcmd.WriteToFile(*kc, path); err != nil {
			return fmt.Errorf("cannot write kubeconfig %s: %w", path, err)
		}
	}
	return nil
}

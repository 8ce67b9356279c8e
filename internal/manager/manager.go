package manager

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/strata-dev/strata/internal/kit/egress"
	"github.com/strata-dev/strata/internal/kubeclient"
	"github.com/strata-dev/strata/internal/scheme"
)

// Options are the settings shared by the manager and every subsystem.
type Options struct {
	// MetricsAddr serves Prometheus metrics; "0" disables them.
	MetricsAddr string
	// ProbeAddr serves /healthz and /readyz; "0" disables them.
	ProbeAddr string
	// PprofAddr serves Go's /debug/pprof endpoints (CPU and heap profiles
	// of the manager), unauthenticated; "" or "0" disables them (the
	// default).
	PprofAddr string
	// LeaderElection makes only one replica reconcile at a time.
	LeaderElection bool
	// LeaderElectionNamespace holds the leader election lease.
	LeaderElectionNamespace string
	// PollInterval is how often external state is re-observed for drift.
	PollInterval time.Duration
	// MaxConcurrentReconciles is the worker count per controller.
	MaxConcurrentReconciles int
	// Workers overrides MaxConcurrentReconciles per subsystem (--workers
	// composition=32,gitops=10,managed=10): a subsystem's name, or
	// "managed" for every provider.
	Workers map[string]int
	// WatchLabelSelector restricts the claims, composites, composed
	// resources, Syncs, GitRepositories and managed resources this manager
	// sees (--watch-label-selector), so several managers split them into
	// shards by kubeclient.ShardLabel; each shard elects its own leader.
	WatchLabelSelector string
	// SkipControllerNameValidation lets several managers run in one
	// process (tests of shards); controller names are unique per process
	// otherwise.
	SkipControllerNameValidation bool
	// MaxReconcileRate caps managed-resource reconciles per second across
	// every provider; 0 (the default) means no cap: each kind's workers
	// bound the concurrent calls to an external system, and the API server
	// protects itself with Priority and Fairness. A cap of 100 made 1000
	// NopResources take 27 s instead of a few (issue 15), and a cap below
	// resources/poll-interval delays every drift poll.
	MaxReconcileRate float64
	// KubeAPI is the client-side rate limit of each subsystem's API client
	// (--kube-api-qps, --kube-api-burst). The default, kubeclient.Unlimited,
	// leaves the API server's Priority and Fairness in charge; a zero field
	// keeps the subsystem's own default.
	KubeAPI kubeclient.Limit
	// Subsystems names the subsystems to run; empty runs all of them.
	Subsystems []string
	// StateDir is where subsystems may keep local files (e.g. Git artifacts).
	StateDir string
	// WebhookAddr is where the Git webhook receiver listens; empty means a
	// free loopback port when StateDir is set (strata up), else ":9292".
	WebhookAddr string
	// DefaultServiceAccount is impersonated, in each Sync's namespace, by
	// Syncs without serviceAccountName (multi-tenant lockdown).
	DefaultServiceAccount string
	// NoCrossNamespaceRefs refuses Syncs whose sourceRef or dependsOn name
	// another namespace (multi-tenant lockdown).
	NoCrossNamespaceRefs bool
	// AllowFileURLs are the folders file:// GitRepository URLs may read
	// (--allow-file-urls); empty refuses them all.
	AllowFileURLs []string
	// RemoteBases lets kustomize builds fetch remote bases
	// (--no-remote-bases=false); off by default.
	RemoteBases bool
	// MemoryLimit is the Go runtime's soft memory limit (--memory-limit,
	// see SetMemoryLimit): "" derives it from GOMEMLIMIT or the
	// container's memory limit, "0" sets none. New does not apply it: it is
	// the process's, set once by the command that runs the manager.
	MemoryLimit string
	// EgressDeniedNetworks are the networks (kit/egress group names or
	// CIDRs) the manager never connects to for a tenant: notification
	// Providers, SecretStores, analysis metrics and Git fetches
	// (--egress-denied-networks). Default: egress.Default; strata up
	// allows its loopback, where its own servers run.
	EgressDeniedNetworks []string
}

// DefaultOptions are the settings `strata manager` starts with.
func DefaultOptions() Options {
	return Options{
		MetricsAddr:             ":8080",
		ProbeAddr:               ":8081",
		LeaderElectionNamespace: "strata-system",
		PollInterval:            time.Minute,
		MaxConcurrentReconciles: 10,
		Workers:                 map[string]int{"composition": 32},
		KubeAPI:                 kubeclient.Unlimited,
		EgressDeniedNetworks:    egress.Default,
	}
}

// Egress is the policy EgressDeniedNetworks describe.
func (o Options) Egress() (egress.Policy, error) {
	p, err := egress.Parse(o.EgressDeniedNetworks)
	if err != nil {
		return egress.Policy{}, fmt.Errorf("--egress-denied-networks: %w", err)
	}
	return p, nil
}

// WorkersFor is the worker count per controller of the subsystem named
// name: Workers[name], Workers["managed"] for a provider, else
// MaxConcurrentReconciles.
func (o Options) WorkersFor(name string) int {
	if n := o.Workers[name]; n > 0 {
		return n
	}
	if strings.HasPrefix(name, "provider-") {
		if n := o.Workers["managed"]; n > 0 {
			return n
		}
	}
	return o.MaxConcurrentReconciles
}

// LeaderElectionID is the lease name of the manager's shard: one per
// --watch-label-selector, so each shard elects its own leader.
func (o Options) LeaderElectionID() string {
	if o.WatchLabelSelector == "" {
		return "strata-manager.strata.dev"
	}
	sum := sha256.Sum256([]byte(o.WatchLabelSelector))
	return "strata-manager-" + hex.EncodeToString(sum[:])[:10] + ".strata.dev"
}

// Subsystem is one part of Strata that registers controllers with the manager.
type Subsystem struct {
	// Name selects the subsystem with --subsystems.
	Name string
	// Setup registers the subsystem's controllers.
	Setup func(mgr ctrl.Manager, o Options) error
}

// Subsystems returns the registered subsystems.
func Subsystems() []Subsystem { return subsystems }

// New builds a manager for the cluster at cfg with every selected subsystem
// registered.
func New(cfg *rest.Config, o Options, log logr.Logger) (ctrl.Manager, error) {
	if _, err := o.Egress(); err != nil {
		return nil, err
	}
	sch := scheme.New()
	cacheOpts, err := shardCache(sch, o.WatchLabelSelector)
	if err != nil {
		return nil, err
	}
	// The manager's own client, API reader and caches get the same limit
	// as the subsystems' clients: left at client-go's default they would
	// queue every live read (a claim looking for the XR its cache has not
	// seen yet) behind 20 requests per second.
	mgr, err := ctrl.NewManager(o.KubeAPI.Config(cfg), ctrl.Options{
		Scheme:                  sch,
		Logger:                  log,
		Metrics:                 metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:  o.ProbeAddr,
		PprofBindAddress:        o.PprofAddr,
		LeaderElection:          o.LeaderElection,
		LeaderElectionID:        o.LeaderElectionID(),
		LeaderElectionNamespace: o.LeaderElectionNamespace,
		Cache:                   cacheOpts,
		Controller:              config.Controller{SkipNameValidation: &o.SkipControllerNameValidation},
	})
	if err != nil {
		return nil, fmt.Errorf("cannot create manager: %w", err)
	}
	if o.ProbeAddr != "0" && o.ProbeAddr != "" {
		if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
			return nil, fmt.Errorf("cannot add health check: %w", err)
		}
		if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
			return nil, fmt.Errorf("cannot add ready check: %w", err)
		}
	}
	selected, err := selectSubsystems(o.Subsystems)
	if err != nil {
		return nil, err
	}
	for _, s := range selected {
		if err := s.Setup(mgr, o); err != nil {
			return nil, fmt.Errorf("cannot set up %s: %w", s.Name, err)
		}
		log.V(1).Info("registered subsystem", "subsystem", s.Name)
	}
	return mgr, nil
}

func selectSubsystems(names []string) ([]Subsystem, error) {
	if len(names) == 0 {
		return subsystems, nil
	}
	byName := map[string]Subsystem{}
	for _, s := range subsystems {
		byName[s.Name] = s
	}
	var out []Subsystem
	for _, n := range names {
		s, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("unknown subsystem %q (known: %v)", n, subsystemNames())
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, errors.New("no subsystem selected")
	}
	return out, nil
}

func subsystemNames() []string {
	var n []string
	for _, s := range subsystems {
		n = append(n, s.Name)
	}
	return n
}

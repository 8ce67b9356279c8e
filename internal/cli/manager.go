package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/strata-dev/strata/internal/install"
	"github.com/strata-dev/strata/internal/kit/egress"
	"github.com/strata-dev/strata/internal/manager"
)

func newManagerCommand() *cobra.Command {
	o := manager.DefaultOptions()
	var installCRDs bool
	var verbosity int
	cmd := &cobra.Command{
		Use:   "manager",
		Short: "Run Strata's controllers against the cluster in KUBECONFIG",
		Long: `Run Strata's controllers against any cluster, the way Strata runs inside a
real cluster: with leader election, health and readiness probes and
Prometheus metrics.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger(os.Stderr, verbosity)
			ml, err := manager.SetMemoryLimit(o.MemoryLimit)
			if err != nil {
				return err
			}
			log.Info("set the Go runtime's memory limit", ml.LogValues()...)
			cfg, err := ctrl.GetConfig()
			if err != nil {
				return fmt.Errorf("cannot load kubeconfig: %w", err)
			}
			ctx := ctrl.SetupSignalHandler()
			if installCRDs {
				n, err := install.CRDs(ctx, cfg)
				if err != nil {
					return err
				}
				if err := install.ApprovalGate(ctx, cfg); err != nil {
					return err
				}
				log.Info("installed CRDs", "count", n)
			}
			mgr, err := manager.New(cfg, o, log)
			if err != nil {
				return err
			}
			log.Info("starting manager", "metrics", o.MetricsAddr, "probes", o.ProbeAddr, "leaderElection", o.LeaderElection)
			if err := mgr.Start(ctx); err != nil {
				return fmt.Errorf("manager stopped: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.MetricsAddr, "metrics-bind-address", o.MetricsAddr, `address for Prometheus metrics ("0" disables)`)
	f.StringVar(&o.ProbeAddr, "health-probe-bind-address", o.ProbeAddr, `address for /healthz and /readyz ("0" disables)`)
	f.BoolVar(&o.LeaderElection, "leader-elect", true, "run only one active replica at a time")
	f.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", o.LeaderElectionNamespace, "namespace of the leader election lease")
	f.StringVar(&o.WatchLabelSelector, "watch-label-selector", "", `reconcile only the claims, composites, Syncs, GitRepositories and managed resources matching this label selector, e.g. "sharding.strata.dev/key in (shard1)", or "!sharding.strata.dev/key" for the default shard; each selector elects its own leader`)
	addSharedManagerFlags(cmd, &o)
	f.BoolVar(&installCRDs, "install-crds", false, "apply Strata's CRDs and the promotion approval gate (admission policies, approver roles) before starting")
	f.IntVarP(&verbosity, "verbosity", "v", 0, "log verbosity")
	return cmd
}

// addSharedManagerFlags adds the flags `strata up` and `strata manager` share.
func addSharedManagerFlags(cmd *cobra.Command, o *manager.Options) {
	f := cmd.Flags()
	f.DurationVar(&o.PollInterval, "poll-interval", o.PollInterval, "how often external resources are re-observed for drift")
	f.StringVar(&o.PprofAddr, "pprof-bind-address", "", `address for Go's /debug/pprof endpoints, to profile the manager's CPU and memory (unauthenticated: bind to localhost; "" disables)`)
	f.StringVar(&o.MemoryLimit, "memory-limit", "", `the Go runtime's soft memory limit, e.g. 900Mi ("": GOMEMLIMIT if set, else 90% of the container's memory limit; "0": none): near it the garbage collector works harder instead of letting the container run out of memory`)
	f.IntVar(&o.MaxConcurrentReconciles, "max-reconciles", o.MaxConcurrentReconciles, "concurrent reconciles per controller")
	f.Float64Var(&o.MaxReconcileRate, "max-reconcile-rate", o.MaxReconcileRate, "managed-resource reconciles per second across all providers (0: no limit)")
	f.StringToIntVar(&o.Workers, "workers", o.Workers, `concurrent reconciles per controller of a subsystem ("composition", "gitops", "managed" for every provider), overriding --max-reconciles`)
	f.Float32Var(&o.KubeAPI.QPS, "kube-api-qps", o.KubeAPI.QPS, "API requests per second each subsystem's client may make (-1: no client-side limit, the API server's priority and fairness queues; 0: the subsystem's own default)")
	f.IntVar(&o.KubeAPI.Burst, "kube-api-burst", o.KubeAPI.Burst, "burst of API requests each subsystem's client may make (with a positive --kube-api-qps; 0: the subsystem's own default)")
	f.StringVar(&o.WebhookAddr, "webhook-bind-address", o.WebhookAddr, "address of the Git webhook receiver (default: a free loopback port under strata up, :9292 otherwise)")
	f.StringSliceVar(&o.Subsystems, "subsystems", nil, "subsystems to run (default: all)")
	f.StringVar(&o.DefaultServiceAccount, "default-service-account", o.DefaultServiceAccount, "service account, in the Sync's own namespace, that Syncs without serviceAccountName act as (default: the manager's rights)")
	f.BoolVar(&o.NoCrossNamespaceRefs, "no-cross-namespace-refs", o.NoCrossNamespaceRefs, "refuse Syncs whose sourceRef or dependsOn name another namespace")
	f.StringSliceVar(&o.AllowFileURLs, "allow-file-urls", nil, "folders file:// GitRepository URLs may read (default: none; strata up --sync PATH adds PATH)")
	f.Var(negatedBool{&o.RemoteBases}, "no-remote-bases", "refuse kustomize remote bases (Git URLs in resources); --no-remote-bases=false allows them")
	f.Lookup("no-remote-bases").NoOptDefVal = "true"
	f.StringSliceVar(&o.EgressDeniedNetworks, "egress-denied-networks", o.EgressDeniedNetworks, fmt.Sprintf(`networks the manager never connects to for a tenant (notification Providers, SecretStores, analysis metrics, Git fetches): CIDRs or the groups %s ("" denies none)`, strings.Join(egress.Groups(), ", ")))
}

// negatedBool is a boolean flag that stores its opposite, so the safe
// setting is the zero value of the option it sets.
type negatedBool struct{ p *bool }

func (n negatedBool) String() string {
	return strconv.FormatBool(n.p == nil || !*n.p)
}

func (n negatedBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*n.p = !v
	return nil
}

func (n negatedBool) Type() string { return "bool" }

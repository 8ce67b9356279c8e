package controller

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/strata-dev/strata/internal/gitops/source"
	"github.com/strata-dev/strata/internal/gitops/webhook"
	"github.com/strata-dev/strata/internal/kit/egress"
	"github.com/strata-dev/strata/internal/kubeclient"
)

// Finalizer lets the controllers clean up (forget artifacts, prune) on delete.
const Finalizer = "gitops.strata.dev/finalizer"

// Options configure the delivery subsystem.
type Options struct {
	// StateDir holds the artifact store (StateDir/artifacts); empty uses a
	// temporary folder.
	StateDir string
	// Workers is the number of concurrent reconciles per controller.
	Workers int
	// KeepRevisions is how many revisions per repository stay in the store.
	KeepRevisions int
	// HealthPollInterval is how often a running health check looks again.
	HealthPollInterval time.Duration
	// ClientLimit rate-limits the delivery controllers' API client; zero
	// fields take DefaultClientLimit.
	ClientLimit kubeclient.Limit
	// ReceiverAddr is where the webhook receiver listens; empty disables it.
	// The address it listens on is written to <store>/receiver-addr.
	ReceiverAddr string
	// DefaultServiceAccount is impersonated, in the Sync's own namespace, by
	// every Sync without serviceAccountName; empty applies such Syncs with
	// the manager's rights (--default-service-account).
	DefaultServiceAccount string
	// NoCrossNamespaceRefs refuses Syncs whose sourceRef or dependsOn name
	// another namespace (--no-cross-namespace-refs).
	NoCrossNamespaceRefs bool
	// AllowFileURLs are the folders file:// GitRepository URLs may read;
	// empty refuses every file URL (reason FileURLNotAllowed).
	AllowFileURLs []string
	// RemoteBases lets kustomize fetch remote bases (Git URLs in resources)
	// during a build, each bounded by RemoteBaseTimeout; off by default.
	RemoteBases bool
	// RemoteBaseTimeout bounds the fetch of one remote base (default 60s).
	RemoteBaseTimeout time.Duration
	// Egress is the networks Git fetches may not connect to
	// (GitRepository URLs and remote bases are tenants'). Applied to the
	// whole process (source.Guard) when not empty.
	Egress egress.Policy
}

// Setup registers the GitRepository and Sync controllers with mgr.
func Setup(mgr ctrl.Manager, o Options) error {
	if !o.Egress.Empty() {
		source.Guard(o.Egress)
	}
	dir := o.StateDir
	if dir == "" {
		d, err := os.MkdirTemp("", "strata-gitops-")
		if err != nil {
			return fmt.Errorf("cannot create artifact store folder: %w", err)
		}
		dir = d
	}
	if o.KeepRevisions == 0 {
		o.KeepRevisions = 10
	}
	if o.Workers == 0 {
		o.Workers = 4
	}
	if o.HealthPollInterval == 0 {
		o.HealthPollInterval = 2 * time.Second
	}
	c, cfg, err := kubeclient.New(mgr, o.ClientLimit.Or(DefaultClientLimit), nil)
	if err != nil {
		return err
	}
	store, err := source.NewStore(filepath.Join(dir, "gitops"), o.KeepRevisions)
	if err != nil {
		return err
	}
	roots, err := source.NewFileRoots(o.AllowFileURLs)
	if err != nil {
		return err
	}
	// A Sync that finds its GitRepository's artifact missing from the
	// store asks, through refetch, for the GitRepository to be fetched
	// again, instead of waiting for its interval.
	refetch := make(chan event.GenericEvent, 1024)
	if err := setupGitRepository(mgr, c, store, roots, refetch, o); err != nil {
		return err
	}
	if err := setupSync(mgr, c, cfg, store, refetch, o); err != nil {
		return err
	}
	if o.ReceiverAddr == "" {
		return nil
	}
	rc := &webhook.Receiver{Reader: mgr.GetAPIReader(), Writer: mgr.GetClient(), Log: mgr.GetLogger().WithName("webhook")}
	addrFile := filepath.Join(store.Root(), "receiver-addr")
	return mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		return rc.Server(ctx, o.ReceiverAddr, func(addr string) {
			mgr.GetLogger().Info("webhook receiver listening", "address", addr, "path", webhook.PathPrefix+"<namespace>/<name>")
			_ = os.WriteFile(addrFile, []byte(addr+"\n"), 0o600)
		})
	}))
}

// DefaultClientLimit rate-limits the delivery controllers' requests unless
// --kube-api-qps/--kube-api-burst say otherwise. One Sync of an app costs a
// request per object and two for its status, so client-go's default (5 QPS)
// would make a thousand Syncs take many minutes.
var DefaultClientLimit = kubeclient.Limit{QPS: 500, Burst: 1000}

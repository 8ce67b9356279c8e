package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/spf13/cobra"
	authorizationv1 "k8s.io/api/authorization/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strata-dev/strata/apis/crds"
	"github.com/strata-dev/strata/internal/install"
)

func init() { extraCommands = append(extraCommands, newCheckCommand) }

// minKubernetes is the oldest Kubernetes Strata supports (CEL validation
// rules and server-side apply as Strata uses them).
const minKubernetes = "1.30.0"

func newCheckCommand() *cobra.Command {
	var pre bool
	var managerNS string
	var cf *clusterFlags
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check that the cluster can run Strata (--pre) or that Strata runs in it",
		Long: `check prints one line per check and exits 1 when one fails:
  --pre: the Kubernetes version, and that you may install CRDs and RBAC;
  else:  the Kubernetes version, every CRD installed and Established, the
         manager running and leading (its lease), the webhook receiver's
         Service having ready endpoints, the promotion approval gate's
         admission policies bound, client and manager versions.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := newKube(cf)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			c := &checker{w: cmd.OutOrStdout()}
			ctx := cmd.Context()
			c.kubernetesVersion(k)
			if pre {
				c.preRights(ctx, k)
			} else {
				c.crds(ctx, k)
				c.manager(ctx, k, managerNS)
				c.webhook(ctx, k, managerNS)
				c.approvalGate(ctx, k)
			}
			if c.failed > 0 {
				return &ExitError{Code: 1, Err: fmt.Errorf("%d checks failed", c.failed)}
			}
			fmt.Fprintln(c.w, "all checks passed")
			return nil
		},
	}
	cf = addClusterFlags(cmd, false)
	cmd.Flags().BoolVar(&pre, "pre", false, "check the prerequisites of strata install only")
	cmd.Flags().StringVar(&managerNS, "manager-namespace", install.DefaultNamespace, "namespace strata is installed in")
	return cmd
}

type checker struct {
	w      io.Writer
	failed int
}

func (c *checker) ok(format string, a ...any) { fmt.Fprintf(c.w, "✔ "+format+"\n", a...) }

func (c *checker) fail(format string, a ...any) {
	c.failed++
	fmt.Fprintf(c.w, "✗ "+format+"\n", a...)
}

func (c *checker) kubernetesVersion(k *kube) {
	sv, err := k.cs.Discovery().ServerVersion()
	if err != nil {
		c.fail("kubernetes: cannot reach the API server: %v", err)
		return
	}
	v, err := semver.NewVersion(sv.GitVersion)
	if err != nil {
		c.fail("kubernetes: cannot parse version %q: %v", sv.GitVersion, err)
		return
	}
	if v.LessThan(semver.MustParse(minKubernetes)) {
		c.fail("kubernetes %s: Strata needs >= %s", sv.GitVersion, minKubernetes)
		return
	}
	c.ok("kubernetes %s >= %s", sv.GitVersion, minKubernetes)
}

func (c *checker) preRights(ctx context.Context, k *kube) {
	for _, ra := range []authorizationv1.ResourceAttributes{
		{Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions", Verb: "create"},
		{Group: "rbac.authorization.k8s.io", Resource: "clusterroles", Verb: "create"},
		{Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings", Verb: "create"},
		{Resource: "namespaces", Verb: "create"},
		// The promotion approval gate (internal/install/admission.go).
		{Group: "admissionregistration.k8s.io", Resource: "validatingadmissionpolicies", Verb: "create"},
		{Group: "admissionregistration.k8s.io", Resource: "validatingadmissionpolicybindings", Verb: "create"},
	} {
		r, err := k.cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
			&authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &ra}}, metav1.CreateOptions{})
		switch {
		case err != nil:
			c.fail("rights: cannot ask whether you may %s %s: %v", ra.Verb, ra.Resource, err)
		case !r.Status.Allowed:
			c.fail("rights: you may not %s %s (strata install needs it)", ra.Verb, ra.Resource)
		default:
			c.ok("rights: you may %s %s", ra.Verb, ra.Resource)
		}
	}
}

func (c *checker) crds(ctx context.Context, k *kube) {
	list, err := crds.All()
	if err != nil {
		c.fail("crds: %v", err)
		return
	}
	ac, err := apiextensionsclient.NewForConfig(k.cfg)
	if err != nil {
		c.fail("crds: %v", err)
		return
	}
	good := 0
	for _, want := range list {
		got, err := ac.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			c.fail("crd %s: not installed (run strata install)", want.Name)
			continue
		}
		if err != nil {
			c.fail("crd %s: %v", want.Name, err)
			continue
		}
		established := false
		for _, cond := range got.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				established = true
			}
		}
		if !established {
			c.fail("crd %s: not Established", want.Name)
			continue
		}
		good++
	}
	if good == len(list) {
		c.ok("crds: all %d installed and Established", good)
	}
}

func (c *checker) manager(ctx context.Context, k *kube, ns string) {
	d, err := k.cs.AppsV1().Deployments(ns).Get(ctx, install.ManagerName, metav1.GetOptions{})
	mv := "not installed"
	if err == nil {
		mv = d.Labels["app.kubernetes.io/version"]
	}
	if err != nil {
		c.fail("manager: deployment %s/%s: %v", ns, install.ManagerName, err)
	} else if d.Status.ReadyReplicas < 1 {
		c.fail("manager: deployment %s/%s has no ready replica (%d wanted)", ns, install.ManagerName, derefInt32(d.Spec.Replicas))
	} else {
		c.ok("manager: %d/%d replicas ready", d.Status.ReadyReplicas, derefInt32(d.Spec.Replicas))
	}
	l, err := k.cs.CoordinationV1().Leases(ns).Get(ctx, install.LeaseName, metav1.GetOptions{})
	switch {
	case err != nil:
		c.fail("manager: no leader (lease %s/%s: %v)", ns, install.LeaseName, err)
	case l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" || l.Spec.RenewTime == nil:
		c.fail("manager: lease %s/%s has no holder", ns, install.LeaseName)
	default:
		dur := 15 * time.Second
		if l.Spec.LeaseDurationSeconds != nil {
			dur = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
		}
		if age := time.Since(l.Spec.RenewTime.Time); age > 2*dur {
			c.fail("manager: leader %s last renewed its lease %s ago", *l.Spec.HolderIdentity, age.Round(time.Second))
		} else {
			c.ok("manager: %s is leading", *l.Spec.HolderIdentity)
		}
	}
	c.ok("versions: client %s, manager %s", Version, mv)
}

func (c *checker) webhook(ctx context.Context, k *kube, ns string) {
	slices, err := k.cs.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + install.WebhookService})
	if err != nil {
		c.fail("webhook receiver: %v", err)
		return
	}
	ready := 0
	for _, s := range slices.Items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready == nil || *e.Conditions.Ready {
				ready++
			}
		}
	}
	if ready == 0 {
		c.fail("webhook receiver: service %s/%s has no ready endpoint", ns, install.WebhookService)
		return
	}
	c.ok("webhook receiver: service %s/%s has %d ready endpoints", ns, install.WebhookService, ready)
}

func derefInt32(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

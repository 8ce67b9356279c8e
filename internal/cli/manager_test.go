package cli

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/strata-dev/strata/internal/kubeclient"
	"github.com/strata-dev/strata/internal/manager"
)

// TestKubeAPIFlags checks that `strata manager` and `strata up` take
// --kube-api-qps/--kube-api-burst, that -1 (no client-side limit: the API
// server's priority and fairness) is the default, and that the values reach
// the manager options.
func TestKubeAPIFlags(t *testing.T) {
	for name, cmd := range map[string]*cobra.Command{"manager": newManagerCommand(), "up": newUpCommand()} {
		for _, f := range []string{"kube-api-qps", "kube-api-burst"} {
			fl := cmd.Flags().Lookup(f)
			if fl == nil {
				t.Errorf("strata %s has no --%s flag", name, f)
				continue
			}
			if fl.DefValue != "-1" {
				t.Errorf("strata %s --%s defaults to %s, want -1 (no client-side limit)", name, f, fl.DefValue)
			}
		}
	}
	cases := map[string]struct {
		args []string
		want kubeclient.Limit
	}{
		"unset":      {args: nil, want: kubeclient.Unlimited},
		"zero":       {args: []string{"--kube-api-qps=0", "--kube-api-burst=0"}, want: kubeclient.Limit{}},
		"both":       {args: []string{"--kube-api-qps=42.5", "--kube-api-burst=85"}, want: kubeclient.Limit{QPS: 42.5, Burst: 85}},
		"only qps":   {args: []string{"--kube-api-qps", "1000"}, want: kubeclient.Limit{QPS: 1000, Burst: -1}},
		"only burst": {args: []string{"--kube-api-burst=7"}, want: kubeclient.Limit{QPS: -1, Burst: 7}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			o := manager.DefaultOptions()
			cmd := &cobra.Command{Use: "x"}
			addSharedManagerFlags(cmd, &o)
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, o.KubeAPI); diff != "" {
				t.Errorf("KubeAPI (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWorkersAndShardFlags checks --workers per subsystem and
// --watch-label-selector.
func TestWorkersAndShardFlags(t *testing.T) {
	cmd := newManagerCommand()
	if err := cmd.ParseFlags([]string{"--workers=gitops=3,managed=4", "--watch-label-selector=sharding.strata.dev/key in (a)"}); err != nil {
		t.Fatal(err)
	}
	up := newUpCommand()
	if up.Flags().Lookup("workers") == nil {
		t.Error("strata up has no --workers flag")
	}
	if v := cmd.Flags().Lookup("watch-label-selector").Value.String(); v != "sharding.strata.dev/key in (a)" {
		t.Errorf("--watch-label-selector = %q", v)
	}
	// The flag holds a map, so its printed form has no fixed order: compare
	// the parsed values.
	got, err := cmd.Flags().GetStringToInt("workers")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["gitops"] != 3 || got["managed"] != 4 {
		t.Errorf("--workers = %v, want gitops=3 managed=4", got)
	}
}

// TestCLIClientIsNotThrottled checks that the REST clients the CLI builds
// from a kubeconfig carry no client-side rate limiter: with client-go's
// default (5 requests a second) `strata uninstall` waited tens of seconds on
// its own lists and deletes.
func TestCLIClientIsNotThrottled(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1"}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "t"}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "c"
	if err := clientcmd.WriteToFile(*cfg, kc); err != nil {
		t.Fatal(err)
	}
	rc, err := (&clusterFlags{kubeconfig: kc}).config()
	if err != nil {
		t.Fatal(err)
	}
	rc.GroupVersion = &schema.GroupVersion{Version: "v1"}
	rc.APIPath = "/api"
	rc.NegotiatedSerializer = clientgoscheme.Codecs.WithoutConversion()
	c, err := rest.RESTClientFor(rc)
	if err != nil {
		t.Fatal(err)
	}
	if l := c.GetRateLimiter(); l != nil {
		t.Errorf("the CLI's client is rate limited to %v requests a second, want no client-side limit", l.QPS())
	}
}

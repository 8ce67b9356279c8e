package kubeclient_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/strata-dev/strata/internal/kubeclient"
)

func TestLimitOr(t *testing.T) {
	def := kubeclient.Limit{QPS: 200, Burst: 400}
	cases := map[string]struct {
		l    kubeclient.Limit
		want kubeclient.Limit
	}{
		"unset keeps the default":   {l: kubeclient.Limit{}, want: def},
		"both set win":              {l: kubeclient.Limit{QPS: 50, Burst: 60}, want: kubeclient.Limit{QPS: 50, Burst: 60}},
		"only qps set":              {l: kubeclient.Limit{QPS: 1000}, want: kubeclient.Limit{QPS: 1000, Burst: 400}},
		"only burst set":            {l: kubeclient.Limit{Burst: 7}, want: kubeclient.Limit{QPS: 200, Burst: 7}},
		"unlimited stays unlimited": {l: kubeclient.Unlimited, want: kubeclient.Unlimited},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.l.Or(def)); diff != "" {
				t.Errorf("Or (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLimitConfig checks the rate limit a client built from the config gets:
// the manager's own client and API reader are built this way, and one left at
// client-go's default (5 requests per second) made 1000 claims wait ten
// minutes for their live reads.
func TestLimitConfig(t *testing.T) {
	base := &rest.Config{Host: "https://example.invalid", QPS: 20, Burst: 30}
	cases := map[string]struct {
		l         kubeclient.Limit
		wantQPS   float32
		wantBurst int
	}{
		"unlimited turns the limiter off": {l: kubeclient.Unlimited, wantQPS: -1, wantBurst: 0},
		"a zero limit keeps the config's": {l: kubeclient.Limit{}, wantQPS: 20, wantBurst: 30},
		"qps and burst":                   {l: kubeclient.Limit{QPS: 100, Burst: 150}, wantQPS: 100, wantBurst: 150},
		"qps alone bursts to twice it":    {l: kubeclient.Limit{QPS: 100}, wantQPS: 100, wantBurst: 200},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := tc.l.Config(base)
			if got.QPS != tc.wantQPS || got.Burst != tc.wantBurst {
				t.Errorf("QPS, Burst = %v, %v; want %v, %v", got.QPS, got.Burst, tc.wantQPS, tc.wantBurst)
			}
			if base.QPS != 20 || base.Burst != 30 {
				t.Errorf("the base config was changed: QPS, Burst = %v, %v", base.QPS, base.Burst)
			}
			c, err := rest.RESTClientFor(withCodec(got))
			if err != nil {
				t.Fatal(err)
			}
			if unlimited := c.GetRateLimiter() == nil; unlimited != (tc.wantQPS < 0) {
				t.Errorf("client without rate limiter = %v, want %v", unlimited, tc.wantQPS < 0)
			}
		})
	}
}

func withCodec(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.GroupVersion = &corev1.SchemeGroupVersion
	cfg.APIPath = "/api"
	cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	return cfg
}

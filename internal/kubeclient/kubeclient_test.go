package kubeclient_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

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

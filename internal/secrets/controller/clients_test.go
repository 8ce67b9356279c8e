package controller

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/secrets/provider"
	"github.com/strata-dev/strata/internal/secrets/provider/fake"
)

// countingClient counts the calls that reach the provider.
type countingClient struct {
	provider.Client
	calls int
}

func (c *countingClient) GetSecret(ctx context.Context, ref provider.Ref) ([]byte, error) {
	c.calls++
	return c.Client.GetSecret(ctx, ref)
}

// A store's rate limit bounds the calls that reach its provider: past the
// burst, a call that cannot get a token before its deadline fails without
// reaching the provider.
func TestStoreRateLimitBoundsCalls(t *testing.T) {
	cases := map[string]struct {
		limit     *secretsv1.RateLimit
		calls     int
		wantReach int
	}{
		"burst of 3 at 1 per second": {limit: &secretsv1.RateLimit{QPS: 1, Burst: 3}, calls: 10, wantReach: 3},
		"burst defaults to qps":      {limit: &secretsv1.RateLimit{QPS: 1}, calls: 10, wantReach: 1},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var cc *countingClient
			ctor := func(ctx context.Context, s provider.Store, k provider.Kube) (provider.Client, error) {
				c, err := fake.New(ctx, s, k)
				cc = &countingClient{Client: c}
				return cc, err
			}
			cl := NewClients(map[string]provider.Constructor{"fake": ctor}, nil, nil)
			st := &secretsv1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: "n", Name: "s", Generation: 1},
				Spec: secretsv1.SecretStoreSpec{RateLimit: tc.limit, Provider: secretsv1.SecretStoreProvider{
					Fake: &secretsv1.FakeProvider{Data: []secretsv1.FakeProviderData{{Key: "k", Value: "v"}}}}}}
			c, err := cl.Get(context.Background(), st, false)
			if err != nil {
				t.Fatal(err)
			}
			// Building the client (a login) took one token.
			refused := 0
			for i := 0; i < tc.calls; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
				_, err := c.GetSecret(ctx, provider.Ref{Key: "k"})
				cancel()
				if err != nil {
					refused++
				}
			}
			if cc.calls != tc.wantReach-1 {
				t.Errorf("%d call(s) reached the provider, want %d (burst %d minus the login)", cc.calls, tc.wantReach-1, tc.wantReach)
			}
			if refused != tc.calls-cc.calls {
				t.Errorf("refused %d, want %d", refused, tc.calls-cc.calls)
			}
			if got := cl.Calls(secretsv1.SecretStoreKind, "n", "s"); got != int64(tc.wantReach) {
				t.Errorf("Calls() = %d, want %d", got, tc.wantReach)
			}
		})
	}
}

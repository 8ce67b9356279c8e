package patch

import (
	"context"
	"fmt"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, &env, testenv.Start))
}

func ingress(ip string) corev1.LoadBalancerStatus {
	return corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: ip}}}
}

// TestStatus writes a Service's status from a fresh or a stale read, with and
// without the optimistic lock, and checks what the API server kept.
func TestStatus(t *testing.T) {
	ctx := context.Background()
	cases := map[string]struct {
		// stale: someone else writes 10.0.0.9 after our read.
		stale bool
		// ownUpdate: the caller updates the Service's labels after the
		// read, and tells the helper (Updated) when told is set.
		ownUpdate, told bool
		lock            bool
		writes          int
		conflict        bool
		want            string
	}{
		"fresh read, unlocked":            {writes: 1, want: "10.0.0.1"},
		"fresh read, locked":              {lock: true, writes: 1, want: "10.0.0.1"},
		"fresh read, locked twice":        {lock: true, writes: 2, want: "10.0.0.2"},
		"stale read, unlocked overwrites": {stale: true, writes: 1, want: "10.0.0.1"},
		"stale read, locked is refused":   {stale: true, lock: true, writes: 1, conflict: true, want: "10.0.0.9"},
		"stale read, locked, second too":  {stale: true, lock: true, writes: 2, conflict: true, want: "10.0.0.9"},
		"own update, told, locked":        {ownUpdate: true, told: true, lock: true, writes: 1, want: "10.0.0.1"},
		"own update, told, unlocked":      {ownUpdate: true, told: true, writes: 1, want: "10.0.0.1"},
		"own update, untold, locked":      {ownUpdate: true, lock: true, writes: 1, conflict: true, want: ""},
		"own update, told, then stale":    {ownUpdate: true, told: true, stale: true, lock: true, writes: 1, conflict: true, want: "10.0.0.9"},
	}
	i := 0
	for name, tc := range cases {
		i++
		t.Run(name, func(t *testing.T) {
			svc := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("patch-%d", i)},
				Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}},
			}
			if err := env.Client.Create(ctx, svc); err != nil {
				t.Fatal(err)
			}
			read := svc.DeepCopy()
			h := NewHelper(env.Client, read)
			if tc.ownUpdate {
				own := read.DeepCopy()
				own.Labels = map[string]string{"updated": "true"}
				if err := env.Client.Update(ctx, own); err != nil {
					t.Fatal(err)
				}
				read.Labels, read.ResourceVersion = own.Labels, own.ResourceVersion
				if tc.told {
					h.Updated(own)
				}
			}
			if tc.stale {
				other := read.DeepCopy()
				other.Status.LoadBalancer = ingress("10.0.0.9")
				if err := env.Client.Status().Update(ctx, other); err != nil {
					t.Fatal(err)
				}
			}
			var opts []Option
			if tc.lock {
				opts = append(opts, WithOptimisticLock())
			}
			var err error
			for w := 1; w <= tc.writes && err == nil; w++ {
				read.Status.LoadBalancer = ingress(fmt.Sprintf("10.0.0.%d", w))
				err = h.Status(ctx, read, opts...)
			}
			if got := apierrors.IsConflict(err); got != tc.conflict {
				t.Fatalf("Status() error = %v, want conflict %v", err, tc.conflict)
			}
			got := &corev1.Service{}
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(svc), got); err != nil {
				t.Fatal(err)
			}
			if ing := got.Status.LoadBalancer.Ingress; tc.want == "" && len(ing) != 0 || tc.want != "" && (len(ing) != 1 || ing[0].IP != tc.want) {
				t.Errorf("status.loadBalancer = %+v, want ingress %s", got.Status.LoadBalancer, tc.want)
			}
			if !tc.conflict && h.Base().GetResourceVersion() != got.ResourceVersion {
				t.Errorf("base resourceVersion %s, want the written %s", h.Base().GetResourceVersion(), got.ResourceVersion)
			}
		})
	}
}

package patch

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

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

// TestStatusSkips counts the status writes sent: none for a status equal to
// the base, none WithMemory for the status last written from a stale base.
func TestStatusSkips(t *testing.T) {
	ctx := context.Background()
	cases := map[string]struct {
		// first is written by an earlier reconcile (with the same memory);
		// the reconcile under test then starts from the object as created.
		first  string
		memory bool
		set    string
		writes int
	}{
		"unchanged status sends nothing":              {set: "", writes: 0},
		"changed status is written":                   {set: "10.0.0.1", writes: 1},
		"stale base, same status, memory skips":       {first: "10.0.0.1", memory: true, set: "10.0.0.1", writes: 0},
		"stale base, other status, memory writes":     {first: "10.0.0.1", memory: true, set: "10.0.0.2", writes: 1},
		"stale base, same status, no memory writes":   {first: "10.0.0.1", set: "10.0.0.1", writes: 1},
		"stale base, back to the base, memory writes": {first: "10.0.0.1", memory: true, set: "", writes: 0},
	}
	i := 0
	for name, tc := range cases {
		i++
		t.Run(name, func(t *testing.T) {
			svc := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("skips-%d", i)},
				Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}},
			}
			if err := env.Client.Create(ctx, svc); err != nil {
				t.Fatal(err)
			}
			var opts []Option
			if tc.memory {
				opts = append(opts, WithMemory(NewMemory()))
			}
			if tc.first != "" {
				earlier := svc.DeepCopy()
				h := NewHelper(env.Client, earlier)
				earlier.Status.LoadBalancer = ingress(tc.first)
				if err := h.Status(ctx, earlier, opts...); err != nil {
					t.Fatal(err)
				}
			}
			writes := 0
			ww, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Client.Scheme()})
			if err != nil {
				t.Fatal(err)
			}
			c := interceptor.NewClient(ww, interceptor.Funcs{
				SubResourcePatch: func(ctx context.Context, c client.Client, sub string, o client.Object, p client.Patch, po ...client.SubResourcePatchOption) error {
					writes++
					return c.SubResource(sub).Patch(ctx, o, p, po...)
				},
			})
			read := svc.DeepCopy()
			h := NewHelper(c, read)
			if tc.set != "" {
				read.Status.LoadBalancer = ingress(tc.set)
			}
			if err := h.Status(ctx, read, opts...); err != nil {
				t.Fatal(err)
			}
			if writes != tc.writes {
				t.Errorf("%d status writes sent, want %d", writes, tc.writes)
			}
		})
	}
}

// TestStatusSkipsTransitionTime starts a reconcile from the object as
// created after an earlier reconcile wrote a condition: the same condition,
// computed again a second later, is not written again WithMemory (the API
// server keeps the first transition time); a changed condition is.
func TestStatusSkipsTransitionTime(t *testing.T) {
	ctx := context.Background()
	t1 := metav1.NewTime(metav1.Now().Add(-time.Minute).Truncate(time.Second))
	t2 := metav1.NewTime(t1.Add(time.Second))
	cases := map[string]struct {
		memory bool
		status metav1.ConditionStatus
		writes int
		want   metav1.Time
	}{
		"same condition, later time, memory skips":     {memory: true, status: metav1.ConditionTrue, writes: 0, want: t1},
		"same condition, later time, no memory writes": {status: metav1.ConditionTrue, writes: 1, want: t2},
		"changed condition, memory writes":             {memory: true, status: metav1.ConditionFalse, writes: 1, want: t2},
	}
	i := 0
	for name, tc := range cases {
		i++
		t.Run(name, func(t *testing.T) {
			svc := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("times-%d", i)},
				Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
			}
			if err := env.Client.Create(ctx, svc); err != nil {
				t.Fatal(err)
			}
			var opts []Option
			if tc.memory {
				opts = append(opts, WithMemory(NewMemory()))
			}
			cond := func(s metav1.ConditionStatus, at metav1.Time) []metav1.Condition {
				return []metav1.Condition{{Type: "Ready", Status: s, Reason: "Available", Message: "ready", LastTransitionTime: at}}
			}
			earlier := svc.DeepCopy()
			h := NewHelper(env.Client, earlier)
			earlier.Status.Conditions = cond(metav1.ConditionTrue, t1)
			if err := h.Status(ctx, earlier, opts...); err != nil {
				t.Fatal(err)
			}
			writes := 0
			ww, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Client.Scheme()})
			if err != nil {
				t.Fatal(err)
			}
			c := interceptor.NewClient(ww, interceptor.Funcs{
				SubResourcePatch: func(ctx context.Context, c client.Client, sub string, o client.Object, p client.Patch, po ...client.SubResourcePatchOption) error {
					writes++
					return c.SubResource(sub).Patch(ctx, o, p, po...)
				},
			})
			read := svc.DeepCopy()
			h = NewHelper(c, read)
			read.Status.Conditions = cond(tc.status, t2)
			if err := h.Status(ctx, read, opts...); err != nil {
				t.Fatal(err)
			}
			if writes != tc.writes {
				t.Errorf("%d status writes sent, want %d", writes, tc.writes)
			}
			got := &corev1.Service{}
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(svc), got); err != nil {
				t.Fatal(err)
			}
			if len(got.Status.Conditions) != 1 || !got.Status.Conditions[0].LastTransitionTime.Equal(&tc.want) {
				t.Errorf("conditions %+v, want one with lastTransitionTime %s", got.Status.Conditions, tc.want)
			}
		})
	}
}

// TestMemoryBehind: after a status write with a Memory, the object as read
// before that write is behind; the object as written, a newer one (another
// writer after it) and an object the Memory never wrote are not.
func TestMemoryBehind(t *testing.T) {
	ctx := context.Background()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "behind"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}},
	}
	if err := env.Client.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	before := svc.DeepCopy()
	m := NewMemory()
	ours := svc.DeepCopy()
	h := NewHelper(env.Client, ours)
	ours.Status.LoadBalancer = ingress("10.0.0.1")
	if err := h.Status(ctx, ours, WithMemory(m)); err != nil {
		t.Fatal(err)
	}
	if ours.ResourceVersion == before.ResourceVersion {
		t.Fatalf("the status write kept resourceVersion %s", ours.ResourceVersion)
	}
	newer := ours.DeepCopy()
	newer.Labels = map[string]string{"touched": "true"}
	if err := env.Client.Update(ctx, newer); err != nil {
		t.Fatal(err)
	}
	other := before.DeepCopy()
	other.UID = "another-object"
	cases := map[string]struct {
		m    *Memory
		obj  *corev1.Service
		want bool
	}{
		"read before the write":       {m: m, obj: before, want: true},
		"as written":                  {m: m, obj: ours, want: false},
		"written by another later":    {m: m, obj: newer, want: false},
		"never written by the memory": {m: m, obj: other, want: false},
		"no memory":                   {obj: before, want: false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := tc.m.Behind(tc.obj); got != tc.want {
				t.Errorf("Behind(resourceVersion %s) = %t, want %t (last written %s)", tc.obj.ResourceVersion, got, tc.want, ours.ResourceVersion)
			}
		})
	}
	m.Forget(svc.UID)
	if m.Behind(before) {
		t.Error("Behind after Forget")
	}
}

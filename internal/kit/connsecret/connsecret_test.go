package connsecret_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/kit/connsecret"
	"github.com/strata-dev/strata/internal/kit/ownership"
	"github.com/strata-dev/strata/internal/kit/ssa"
	"github.com/strata-dev/strata/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, &env, testenv.Start))
}

var seq atomic.Int32

// newNamespace creates a namespace of its own for one test case.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := fmt.Sprintf("connsecret-%d", seq.Add(1))
	if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	return ns
}

// owner returns an owner backed by a real ConfigMap, so that its UID is the
// API server's.
func owner(t *testing.T, ns, name string, mark ownership.Mark) ownership.Owner {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := env.Client.Create(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	return ownership.Owner{APIVersion: "v1", Kind: "ConfigMap", Namespace: ns, Name: name, UID: cm.UID, Mark: mark}
}

func getSecret(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		t.Fatal(err)
	}
	return s
}

func data(kv ...string) map[string][]byte {
	m := map[string][]byte{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = []byte(kv[i+1])
	}
	return m
}

func strData(s *corev1.Secret) map[string]string {
	m := map[string]string{}
	for k, v := range s.Data {
		m[k] = string(v)
	}
	return m
}

// TestPublish runs every case against the real API server: what exists
// before, one publication, and what the Secret holds after.
func TestPublish(t *testing.T) {
	ctx := context.Background()
	p := connsecret.Publisher{Client: env.Client, Reader: env.Client}
	cases := map[string]struct {
		mark ownership.Mark
		// before prepares the namespace; it gets the owner.
		before   func(t *testing.T, ns string, o ownership.Owner)
		data     map[string][]byte
		merge    bool
		want     connsecret.Result
		wantData map[string]string
		// conflict: the publication is refused with an error containing it,
		// and the Secret keeps wantData.
		conflict string
	}{
		"absent is created": {
			data: data("password", "s3cret"), want: connsecret.Created, wantData: map[string]string{"password": "s3cret"},
		},
		"own with the same data is unchanged": {
			before: func(t *testing.T, ns string, o ownership.Owner) {
				publish(t, p, o, ns, data("password", "s3cret"), false)
			},
			data: data("password", "s3cret"), want: connsecret.Unchanged, wantData: map[string]string{"password": "s3cret"},
		},
		"own: a key that leaves the details is removed": {
			before: func(t *testing.T, ns string, o ownership.Owner) {
				publish(t, p, o, ns, data("password", "a", "endpoint", "db"), false)
			},
			data: data("password", "b"), want: connsecret.Updated, wantData: map[string]string{"password": "b"},
		},
		"merge keeps the keys published before": {
			mark: ownership.OwnerRef,
			before: func(t *testing.T, ns string, o ownership.Owner) {
				publish(t, p, o, ns, data("password", "a"), true)
			},
			data: data("endpoint", "db"), merge: true, want: connsecret.Updated, wantData: map[string]string{"password": "a", "endpoint": "db"},
		},
		"hostile: a Secret another controller owns is refused and unchanged": {
			before: func(t *testing.T, ns string, _ ownership.Owner) {
				victim := owner(t, ns, "victim-owner", ownership.ControllerRef)
				s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "conn"}, Data: data("token", "victim")}
				victim.SetMark(s)
				if err := env.Client.Create(ctx, s); err != nil {
					t.Fatal(err)
				}
			},
			data: data("token", "attacker"), merge: true,
			conflict: "Secret " + "%ns/conn already exists and is owned by ConfigMap victim-owner",
			wantData: map[string]string{"token": "victim"},
		},
		"hostile: an unowned Secret is refused and unchanged": {
			mark: ownership.OwnerRef,
			before: func(t *testing.T, ns string, _ ownership.Owner) {
				s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "conn"}, Data: data("token", "victim")}
				if err := env.Client.Create(ctx, s, client.FieldOwner("helm")); err != nil {
					t.Fatal(err)
				}
			},
			data:     data("token", "attacker"),
			conflict: "owned by another writer (field managers helm)",
			wantData: map[string]string{"token": "victim"},
		},
		"handed over with the adopt annotation is adopted": {
			before: func(t *testing.T, ns string, o ownership.Owner) {
				s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "conn", Annotations: map[string]string{ownership.AnnotationAdopt: o.Ref()}}, Data: data("token", "old")}
				if err := env.Client.Create(ctx, s); err != nil {
					t.Fatal(err)
				}
			},
			data: data("token", "new"), want: connsecret.Adopted, wantData: map[string]string{"token": "new"},
		},
		"keys the shared strata manager wrote move to the owner's and a dropped one goes": {
			before: func(t *testing.T, ns string, o ownership.Owner) {
				s := &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "conn"},
					Type: connsecret.Type, Data: data("password", "a", "old", "x")}
				o.SetMark(s)
				if err := ssa.Apply(ctx, env.Client, s, ssa.Options{FieldManager: ssa.LegacyFieldManager, Policy: ssa.Force}); err != nil {
					t.Fatal(err)
				}
			},
			data: data("password", "a"), want: connsecret.Updated, wantData: map[string]string{"password": "a"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ns := newNamespace(t)
			o := owner(t, ns, "writer", tc.mark)
			if tc.before != nil {
				tc.before(t, ns, o)
			}
			got, err := p.Publish(ctx, connsecret.Request{Owner: o, Ref: connsecret.Ref{Namespace: ns, Name: "conn"}, Data: tc.data, Merge: tc.merge})
			if tc.conflict != "" {
				want := strings.ReplaceAll(tc.conflict, "%ns", ns)
				if !ownership.IsConflict(err) || !strings.Contains(err.Error(), want) {
					t.Fatalf("Publish() error = %v, want a conflict containing %q", err, want)
				}
				if strings.Contains(err.Error(), "victim") && strings.Contains(err.Error(), "attacker") {
					t.Errorf("the error shows values: %v", err)
				}
			} else if err != nil || got != tc.want {
				t.Fatalf("Publish() = %v, %v; want %v", got, err, tc.want)
			}
			s := getSecret(t, ns, "conn")
			if diff := cmp.Diff(tc.wantData, strData(s)); diff != "" {
				t.Errorf("Secret data (-want +got):\n%s", diff)
			}
			if tc.conflict != "" {
				if o.Controls(s) {
					t.Errorf("the refused owner's mark is on the Secret: %+v", s.OwnerReferences)
				}
				return
			}
			if !o.Controls(s) {
				t.Errorf("the Secret does not carry the owner's mark: %+v %v", s.OwnerReferences, s.Labels)
			}
			for _, f := range s.ManagedFields {
				if f.Manager == ssa.LegacyFieldManager {
					t.Errorf("the shared strata field manager still has an entry: %+v", f)
				}
			}
		})
	}
}

func publish(t *testing.T, p connsecret.Publisher, o ownership.Owner, ns string, d map[string][]byte, merge bool) {
	t.Helper()
	if _, err := p.Publish(context.Background(), connsecret.Request{Owner: o, Ref: connsecret.Ref{Namespace: ns, Name: "conn"}, Data: d, Merge: merge}); err != nil {
		t.Fatal(err)
	}
}

// TestReadAndDelete: the owner reads and deletes only its own Secret; a
// Secret someone else holds is neither read nor deleted.
func TestReadAndDelete(t *testing.T) {
	ctx := context.Background()
	p := connsecret.Publisher{Client: env.Client, Reader: env.Client}
	ns := newNamespace(t)
	o := owner(t, ns, "writer", ownership.OwnerRef)
	mine := connsecret.Ref{Namespace: ns, Name: "conn"}
	publish(t, p, o, ns, data("password", "a"), true)
	got, err := p.Read(ctx, o, mine)
	if err != nil || string(got["password"]) != "a" {
		t.Fatalf("Read(own) = %v, %v", got, err)
	}
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "foreign"}, Data: data("password", "victim")}
	if err := env.Client.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	theirs := connsecret.Ref{Namespace: ns, Name: "foreign"}
	if got, err := p.Read(ctx, o, theirs); !ownership.IsConflict(err) || got != nil {
		t.Fatalf("Read(foreign) = %v, %v; want a conflict and no data", got, err)
	}
	if deleted, err := p.Delete(ctx, o, theirs); err != nil || deleted {
		t.Fatalf("Delete(foreign) = %v, %v; want it left alone", deleted, err)
	}
	getSecret(t, ns, "foreign")
	if deleted, err := p.Delete(ctx, o, mine); err != nil || !deleted {
		t.Fatalf("Delete(own) = %v, %v", deleted, err)
	}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "conn"}, &corev1.Secret{}); err == nil {
		t.Fatal("the owner's Secret is still there")
	}
	if deleted, err := p.Delete(ctx, o, mine); err != nil || deleted {
		t.Fatalf("Delete(gone) = %v, %v", deleted, err)
	}
}

// TestPublishOverAReplacedSecret: the owner's Secret is deleted and made
// again by someone else between Publish's read and its apply. The apply is
// refused and the new Secret keeps its data and gets no owner mark.
func TestPublishOverAReplacedSecret(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	o := owner(t, ns, "db", ownership.ControllerRef)
	ref := connsecret.Ref{Namespace: ns, Name: "conn"}
	p := connsecret.Publisher{Client: env.Client, Reader: env.Client}
	if _, err := p.Publish(ctx, connsecret.Request{Owner: o, Ref: ref, Data: data("password", "one")}); err != nil {
		t.Fatal(err)
	}
	var hook testenv.RequestHook
	hooked, err := client.New(hook.Hooked(env.Config), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p.Client = hooked
	replaced := testenv.ReplaceBefore(t, &hook, env.Client, testenv.BeforeApply, "/namespaces/"+ns+"/secrets/conn",
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "conn"}, Type: connsecret.Type, Data: data("password", "theirs")})
	if _, err := p.Publish(ctx, connsecret.Request{Owner: o, Ref: ref, Data: data("password", "two")}); !ssa.IsReplaced(err) {
		t.Errorf("publish over the replacement: %v, want it refused (ssa.IsReplaced)", err)
	}
	s := getSecret(t, ns, "conn")
	if !replaced.Load() || string(s.Data["password"]) != "theirs" || len(s.OwnerReferences) != 0 {
		t.Errorf("replaced=%v; the replacement holds %v, owners %v: want its own data and no owner", replaced.Load(), strData(s), s.OwnerReferences)
	}
}

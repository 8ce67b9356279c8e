package controller

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/testenv"
)

// grantRead lets ServiceAccount saNS/sa get Secrets in ns.
func grantRead(t *testing.T, c client.Client, ns, saNS, sa string) {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "read-secrets-" + sa},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list"}}}}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "read-secrets-" + sa},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: saNS, Name: sa}}}
	for _, o := range []client.Object{role, rb} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
}

func kubeStore(ns, name, remoteNS string, auth secretsv1.KubernetesAuth) *secretsv1.SecretStore {
	return &secretsv1.SecretStore{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: secretsv1.SecretStoreSpec{Provider: secretsv1.SecretStoreProvider{Kubernetes: &secretsv1.KubernetesProvider{
			RemoteNamespace: remoteNS, Auth: auth}}},
	}
}

// The kubernetes store reads another namespace of the same API server with
// its ServiceAccount's rights: granted, it syncs; not granted, the store is
// refused (it never falls back to Strata's own rights).
func TestKubernetesStoreOtherNamespace(t *testing.T) {
	tenant := namespace(t, nil)
	shared := namespace(t, nil)
	create(t,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: shared, Name: "db"}, Data: map[string][]byte{"password": []byte("k8s-secret-1")}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "reader"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: "nobody"}},
	)
	grantRead(t, env.Client, shared, tenant, "reader")

	st := kubeStore(tenant, "shared", shared, secretsv1.KubernetesAuth{ServiceAccount: &secretsv1.ServiceAccountSelector{Name: "reader"}})
	es := externalSecret(tenant, "app", "shared", item("password", "db", "password"))
	create(t, st, es)
	ready(t, st, metav1.ConditionTrue, secretsv1.ReasonValid)
	ready(t, es, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)
	if got := secretData(t, tenant, "app")["password"]; got != "k8s-secret-1" {
		t.Errorf("got %q", got)
	}

	// Attack: a ServiceAccount without rights on the namespace.
	bad := kubeStore(tenant, "no-rights", shared, secretsv1.KubernetesAuth{ServiceAccount: &secretsv1.ServiceAccountSelector{Name: "nobody"}})
	badES := externalSecret(tenant, "stolen", "no-rights", item("password", "db", "password"))
	create(t, bad, badES)
	msg := ready(t, bad, metav1.ConditionFalse, secretsv1.ReasonProviderError)
	if !strings.Contains(msg, "may not read Secrets") || !strings.Contains(msg, shared) {
		t.Errorf("message %q does not say the credentials may not read the namespace", msg)
	}
	ready(t, badES, metav1.ConditionFalse, secretsv1.ReasonStoreNotReady)
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: tenant, Name: "stolen"}, &corev1.Secret{}); err == nil {
		t.Error("a Secret was written with a store that has no rights")
	}
	noValueLeaks(t, tenant, "k8s-secret-1")
}

// The kubernetes store reads another cluster: a second API server started
// here, reached by URL and CA bundle with a bearer token from a Secret.
func TestKubernetesStoreOtherCluster(t *testing.T) {
	other, err := testenv.Start()
	if err != nil {
		t.Fatalf("cannot start the second API server (run `make tools`): %v", err)
	}
	defer other.Stop()
	ctx := context.Background()
	oc := other.Client
	remote := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "remote"}}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "remote", Name: "exporter"}}
	for _, o := range []client.Object{remote, sa,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "remote", Name: "api"}, Data: map[string][]byte{"key": []byte("remote-value-1")}}} {
		if err := oc.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	grantRead(t, oc, "remote", "remote", "exporter")
	tr := &authenticationv1.TokenRequest{}
	if err := oc.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatal(err)
	}

	ns := namespace(t, nil)
	mk := func(name, tokenSecret string) *secretsv1.SecretStore {
		st := kubeStore(ns, name, "remote", secretsv1.KubernetesAuth{Token: &secretsv1.TokenAuth{BearerToken: secretsv1.SecretKeySelector{Name: tokenSecret, Key: "token"}}})
		st.Spec.Provider.Kubernetes.Server = secretsv1.KubernetesServer{URL: other.Config.Host, CABundle: other.Config.CAData}
		return st
	}
	create(t,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "remote-token"}, Data: map[string][]byte{"token": []byte(tr.Status.Token)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "wrong-token"}, Data: map[string][]byte{"token": []byte("not-a-token")}},
	)
	st := mk("remote", "remote-token")
	es := externalSecret(ns, "app", "remote", item("key", "api", "key"))
	create(t, st, es)
	ready(t, st, metav1.ConditionTrue, secretsv1.ReasonValid)
	ready(t, es, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)
	if got := secretData(t, ns, "app")["key"]; got != "remote-value-1" {
		t.Errorf("got %q", got)
	}

	// Wrong credentials: the store is Ready=False naming the server.
	bad := mk("wrong", "wrong-token")
	create(t, bad)
	msg := ready(t, bad, metav1.ConditionFalse, secretsv1.ReasonProviderError)
	if !strings.Contains(msg, other.Config.Host) || !strings.Contains(msg, "Unauthorized") {
		t.Errorf("message %q does not name the server and the cause", msg)
	}

	// An unreachable server: Ready=False naming it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "https://" + l.Addr().String()
	_ = l.Close()
	down := mk("down", "remote-token")
	down.Spec.Provider.Kubernetes.Server.URL = closed
	create(t, down)
	msg = ready(t, down, metav1.ConditionFalse, secretsv1.ReasonProviderError)
	if !strings.Contains(msg, "cannot reach "+closed) {
		t.Errorf("message %q does not name the unreachable server", msg)
	}
	noValueLeaks(t, ns, "remote-value-1", tr.Status.Token)
}

// Attack: a tenant's kubernetes store whose server URL points into a
// network the manager does not connect to for tenants (127.0.0.2 stands for
// it, main_test.go). The store is refused before a connection is made,
// naming the network; the listener there never sees one.
func TestKubernetesStoreCannotReachDeniedNetworks(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			_ = c.Close()
		}
	}()
	ns := namespace(t, nil)
	st := kubeStore(ns, "internal", "kube-system", secretsv1.KubernetesAuth{Token: &secretsv1.TokenAuth{BearerToken: secretsv1.SecretKeySelector{Name: "tok", Key: "token"}}})
	st.Spec.Provider.Kubernetes.Server = secretsv1.KubernetesServer{URL: "https://" + l.Addr().String()}
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tok"}, Data: map[string][]byte{"token": []byte("t")}}, st)
	msg := ready(t, st, metav1.ConditionFalse, secretsv1.ReasonProviderError)
	if !strings.Contains(msg, "127.0.0.2/32; its --egress-denied-networks") {
		t.Errorf("message %q does not name the denied network", msg)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("the server in the denied network got %d connections", n)
	}
}

package install_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"github.com/strata-dev/strata/internal/cli"
	"github.com/strata-dev/strata/internal/gitops/gittest"
	"github.com/strata-dev/strata/internal/install"
	"github.com/strata-dev/strata/internal/manager"
	"github.com/strata-dev/strata/internal/testenv"
)

var env *testenv.Env

// TestMain starts a whole local cluster: the ClusterRole aggregation the
// install relies on (strata:reconciler, strata-view into view...) is done
// by kube-controller-manager, which a bare API server lacks.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env, testenv.StartCluster)) }

const saUser = "system:serviceaccount:" + install.DefaultNamespace + ":" + install.ServiceAccount

// syncBuffer is a log sink tests read while the manager writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) forbidden() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range strings.Split(s.b.String(), "\n") {
		if strings.Contains(l, "forbidden") || strings.Contains(l, "Forbidden") {
			if i := strings.Index(l, `"stacktrace"`); i > 0 {
				l = l[:i]
			}
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// installLockdown applies the install (with --lockdown, so strata:reconciler
// has only what the test aggregates into it) and returns a REST config
// authenticated as the installed ServiceAccount with a TokenRequest token.
func installLockdown(t *testing.T, ctx context.Context) *rest.Config {
	t.Helper()
	objs, err := install.Objects(install.Options{Lockdown: true, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	// Apply what `strata install --export` prints, read back from YAML.
	y, err := install.YAML(objs)
	if err != nil {
		t.Fatal(err)
	}
	var exported []*unstructured.Unstructured
	for _, doc := range strings.Split(string(y), "---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		exported = append(exported, u)
	}
	if err := install.ApplyObjects(ctx, env.Config, exported); err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(env.Config)
	exp := int64(3600)
	tr, err := cs.CoreV1().ServiceAccounts(install.DefaultNamespace).CreateToken(ctx, install.ServiceAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for %s: %v", saUser, err)
	}
	return &rest.Config{Host: env.Config.Host, TLSClientConfig: rest.TLSClientConfig{CAData: env.Config.CAData}, BearerToken: tr.Status.Token}
}

func apply(t *testing.T, c client.Client, y string) {
	t.Helper()
	for _, doc := range strings.Split(y, "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		if err := c.Patch(context.Background(), u, client.Apply, client.FieldOwner("test"), client.ForceOwnership); err != nil {
			t.Fatalf("apply %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
}

func readyOf(u *unstructured.Unstructured) string {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Ready" {
			s, _ := m["status"].(string)
			r, _ := m["reason"].(string)
			msg, _ := m["message"].(string)
			return s + " " + r + ": " + msg
		}
	}
	return "no Ready condition"
}

// TestManagerAsInstalledServiceAccount runs the manager with exactly the
// RBAC `strata install --lockdown` ships (plus, aggregated into
// strata:reconciler, the kinds this test composes and applies), signed in
// with a TokenRequest token of the installed ServiceAccount, and passes a
// provider, a composition and a delivery flow. A missing rule in rbac.go
// fails a flow and prints the forbidden requests the manager logged.
func TestManagerAsInstalledServiceAccount(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	saCfg := installLockdown(t, ctx)

	// What the platform team grants for what its Compositions compose and
	// its Syncs apply (the --lockdown way).
	apply(t, env.Client, `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: test:reconciler-platform
  labels: {strata.dev/aggregate-to-reconciler: "true"}
rules:
- apiGroups: [platform.strata.dev]
  resources: ["*"]
  verbs: ["*"]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, update, patch, delete]
---
apiVersion: v1
kind: Namespace
metadata: {name: team}`)

	logs := &syncBuffer{}
	log := zap.New(zap.WriteTo(logs), zap.Level(zapcore.InfoLevel))
	ctrl.SetLogger(log)
	repo := gittest.NewRepo(t, t.TempDir(), "apps")
	o := manager.DefaultOptions()
	o.MetricsAddr, o.ProbeAddr = "0", "0"
	o.LeaderElection = true
	o.LeaderElectionNamespace = install.DefaultNamespace
	o.StateDir = t.TempDir()
	o.WebhookAddr = "127.0.0.1:0"
	o.AllowFileURLs = []string{filepath.Dir(repo.Dir)}
	o.PollInterval = 10 * time.Second
	mgr, err := manager.New(saCfg, o, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	failed := func(what string, err error) {
		t.Helper()
		t.Fatalf("%s: %v\nforbidden requests the manager logged:\n%s", what, err, logs.forbidden())
	}
	waitReady := func(what string, u *unstructured.Unstructured) {
		t.Helper()
		var last string
		deadline := time.Now().Add(90 * time.Second)
		for time.Now().Before(deadline) {
			err := env.Client.Get(ctx, client.ObjectKeyFromObject(u), u)
			if err == nil {
				last = readyOf(u)
				if strings.HasPrefix(last, "True ") {
					return
				}
			} else {
				last = err.Error()
			}
			time.Sleep(200 * time.Millisecond)
		}
		failed(what+" not Ready within 90s", &stringError{last + "\n" + dump(u)})
	}
	obj := func(apiVersion, kind, ns, name string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(apiVersion)
		u.SetKind(kind)
		u.SetNamespace(ns)
		u.SetName(name)
		return u
	}

	// The manager leads: leader election works with the namespaced Role.
	cs := kubernetes.NewForConfigOrDie(env.Config)
	deadline := time.Now().Add(60 * time.Second)
	for {
		l, err := cs.CoordinationV1().Leases(install.DefaultNamespace).Get(ctx, install.LeaseName, metav1.GetOptions{})
		if err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" {
			break
		}
		if time.Now().After(deadline) {
			failed("no leader lease", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Provider flow: a NopResource becomes Ready.
	apply(t, env.Client, `apiVersion: nop.strata.dev/v1alpha1
kind: NopResource
metadata: {name: rbac-nop}
spec:
  forProvider:
    conditionAfter:
    - {time: 1s, conditionType: Ready, conditionStatus: "True"}`)
	waitReady("provider flow: NopResource rbac-nop", obj("nop.strata.dev/v1alpha1", "NopResource", "", "rbac-nop"))

	// Composition flow: an XRD, a Composition of a NopResource, and a claim.
	root := testenv.RepoRoot()
	for _, f := range []string{"database-xrd.yaml", "database-composition.yaml"} {
		b, err := os.ReadFile(filepath.Join(root, "examples", "gitops", "infrastructure", f))
		if err != nil {
			t.Fatal(err)
		}
		apply(t, env.Client, string(b))
	}
	deadline = time.Now().Add(60 * time.Second)
	for {
		err := env.Client.Patch(ctx, claimObj(), client.Apply, client.FieldOwner("test"), client.ForceOwnership)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			failed("the XRD's claim kind was not served", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitReady("composition flow: claim team/db", obj("platform.strata.dev/v1alpha1", "Database", "team", "db"))

	// Delivery flow: a GitRepository and a Sync apply a ConfigMap.
	rev := repo.Commit("config", map[string]string{"app/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-config}\ndata: {greeting: hello}\n"})
	apply(t, env.Client, `apiVersion: gitops.strata.dev/v1alpha1
kind: GitRepository
metadata: {name: apps, namespace: team}
spec:
  url: `+repo.URL()+`
  interval: 1m
  ref: {branch: main}
---
apiVersion: gitops.strata.dev/v1alpha1
kind: Sync
metadata: {name: app, namespace: team}
spec:
  sourceRef: {kind: GitRepository, name: apps}
  path: app
  interval: 1m
  prune: enabled`)
	sync := obj("gitops.strata.dev/v1alpha1", "Sync", "team", "app")
	waitReady("delivery flow: Sync team/app", sync)
	if got, _, _ := unstructured.NestedString(sync.Object, "status", "lastAppliedRevision"); !strings.Contains(got, rev) {
		t.Errorf("Sync applied revision %q, want %s", got, rev)
	}
	cm, err := cs.CoreV1().ConfigMaps("team").Get(ctx, "app-config", metav1.GetOptions{})
	if err != nil || cm.Data["greeting"] != "hello" {
		t.Errorf("the Sync's ConfigMap: %v %v", cm, err)
	}
	if f := logs.forbidden(); f != "" {
		t.Errorf("the manager logged forbidden requests:\n%s", f)
	}

	// strata check sees it all: the CRDs, the Deployment's replicas (kwok
	// runs its pods), this manager leading, the receiver's endpoints.
	kc := kubeconfig(t)
	var out, errOut bytes.Buffer
	deadline = time.Now().Add(90 * time.Second)
	for {
		out.Reset()
		errOut.Reset()
		code := cli.Run(ctx, []string{"check", "--kubeconfig", kc}, &out, &errOut)
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("strata check: exit %d\n%s%s", code, out.String(), errOut.String())
		}
		time.Sleep(time.Second)
	}
	for _, want := range []string{"✔ crds: all", "✔ manager: 2/2 replicas ready", "is leading", "✔ webhook receiver: service strata-system/strata-webhook-receiver has 2 ready endpoints", "manager test"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("strata check does not say %q:\n%s", want, out.String())
		}
	}
}

// kubeconfig writes a kubeconfig for the test cluster's admin.
func kubeconfig(t *testing.T) string {
	t.Helper()
	c := env.Config
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.CAData}
	kc.AuthInfos["test"] = &clientcmdapi.AuthInfo{ClientCertificateData: c.CertData, ClientKeyData: c.KeyData, Token: c.BearerToken}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test"}
	kc.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func claimObj() *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "platform.strata.dev/v1alpha1", "kind": "Database",
		"metadata": map[string]any{"name": "db", "namespace": "team"},
		"spec":     map[string]any{"size": "small"},
	}}
	return u
}

type stringError struct{ s string }

func (e *stringError) Error() string { return e.s }

// TestServiceAccountLimits shows what the installed account may not do:
// the API server refuses it, asked both through SubjectAccessReviews and
// by making the request with the account's own token.
func TestServiceAccountLimits(t *testing.T) {
	ctx := context.Background()
	saCfg := installLockdown(t, ctx)
	cs := kubernetes.NewForConfigOrDie(env.Config)
	denied := map[string]authorizationv1.ResourceAttributes{
		"bind cluster-admin (create ClusterRoleBindings)": {Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings", Verb: "create"},
		"escalate its own ClusterRoles":                   {Group: "rbac.authorization.k8s.io", Resource: "clusterroles", Verb: "update", Name: "strata:gitops"},
		"delete namespaces":                               {Resource: "namespaces", Verb: "delete", Name: "kube-system"},
		"create pods":                                     {Resource: "pods", Verb: "create", Namespace: "team"},
		"exec into pods":                                  {Resource: "pods", Subresource: "exec", Verb: "create", Namespace: "kube-system"},
		"impersonate users":                               {Resource: "users", Verb: "impersonate", Name: "admin"},
		"impersonate groups":                              {Resource: "groups", Verb: "impersonate", Name: "system:masters"},
		"create Deployments (lockdown: not aggregated)":   {Group: "apps", Resource: "deployments", Verb: "create", Namespace: "team"},
		"write nodes":                                     {Resource: "nodes", Verb: "update"},
		"change admission webhooks":                       {Group: "admissionregistration.k8s.io", Resource: "mutatingwebhookconfigurations", Verb: "create"},
		"write leases outside its namespace":              {Group: "coordination.k8s.io", Resource: "leases", Verb: "update", Namespace: "kube-system"},
	}
	allowed := map[string]authorizationv1.ResourceAttributes{
		"impersonate a tenant's service account": {Resource: "serviceaccounts", Verb: "impersonate", Namespace: "team", Name: "deployer"},
		"write Syncs' status":                    {Group: "gitops.strata.dev", Resource: "syncs", Subresource: "status", Verb: "patch", Namespace: "team"},
		"hold its lease":                         {Group: "coordination.k8s.io", Resource: "leases", Verb: "update", Namespace: install.DefaultNamespace},
	}
	check := func(name string, ra authorizationv1.ResourceAttributes, want bool) {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: saUser,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + install.DefaultNamespace, "system:authenticated"}, ResourceAttributes: &ra}}
		got, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status.Allowed != want {
			t.Errorf("%s: allowed=%v, want %v (%s)", name, got.Status.Allowed, want, got.Status.Reason)
		}
	}
	for name, ra := range denied {
		check(name, ra, false)
	}
	for name, ra := range allowed {
		check(name, ra, true)
	}

	// The attack itself, with the account's token: bind itself to
	// cluster-admin. Refused, and no binding appears.
	sa := kubernetes.NewForConfigOrDie(saCfg)
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "strata-escalation"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: install.ServiceAccount, Namespace: install.DefaultNamespace}}}
	_, err := sa.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("creating a ClusterRoleBinding to cluster-admin as %s: want Forbidden, got %v", saUser, err)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Get(ctx, "strata-escalation", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the escalation binding exists: %v", err)
	}
}

func dump(u *unstructured.Unstructured) string {
	b, _ := yaml.Marshal(u.Object["status"])
	return string(b)
}

// TestAggregatedUserRoles: strata-view, strata-edit and strata-admin reach
// users bound to the built-in view, edit and admin roles. Users write
// Strata's objects but never their status, which the controllers act on:
// with it a user could set a Stage's promotion in flight, or a Promotion's
// override of a deny window, that no controller made.
func TestAggregatedUserRoles(t *testing.T) {
	ctx := context.Background()
	installLockdown(t, ctx)
	cs := kubernetes.NewForConfigOrDie(env.Config)
	for _, level := range []string{"view", "edit", "admin"} {
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "test-" + level},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: level},
			Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: "user-" + level}}}
		if _, err := cs.RbacV1().RoleBindings("default").Create(ctx, rb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	cases := []struct {
		user, verb, group, resource string
		want                        bool
		subresource                 string
	}{
		{"user-view", "list", "gitops.strata.dev", "syncs", true, ""},
		{"user-view", "create", "gitops.strata.dev", "syncs", false, ""},
		{"user-view", "get", "delivery.strata.dev", "stages", true, "status"},
		{"user-edit", "create", "gitops.strata.dev", "syncs", true, ""},
		{"user-edit", "patch", "delivery.strata.dev", "stages", true, ""},
		{"user-edit", "create", "delivery.strata.dev", "approvals", true, ""},
		{"user-edit", "create", "apiextensions.strata.dev", "compositions", false, ""},
		{"user-edit", "get", "gitops.strata.dev", "syncs", true, "status"},
		{"user-edit", "patch", "gitops.strata.dev", "syncs", false, "status"},
		{"user-edit", "patch", "delivery.strata.dev", "stages", false, "status"},
		{"user-edit", "update", "delivery.strata.dev", "promotions", false, "status"},
		{"user-admin", "delete", "nop.strata.dev", "nopresources", true, ""},
		{"user-admin", "create", "apiextensions.strata.dev", "compositions", true, ""},
		{"user-admin", "get", "delivery.strata.dev", "promotions", true, "status"},
		{"user-admin", "patch", "delivery.strata.dev", "promotions", false, "status"},
		{"user-admin", "patch", "nop.strata.dev", "nopresources", false, "status"},
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, c := range cases {
		for {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: c.user,
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "default", Verb: c.verb, Group: c.group, Resource: c.resource, Subresource: c.subresource}}}
			got, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.Allowed == c.want {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s %s %s.%s (subresource %q): allowed=%v, want %v", c.user, c.verb, c.resource, c.group, c.subresource, got.Status.Allowed, c.want)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

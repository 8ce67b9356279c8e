package promotion

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	deliverycontroller "github.com/strata-dev/strata/internal/delivery/controller"
	gitopscontroller "github.com/strata-dev/strata/internal/gitops/controller"
	"github.com/strata-dev/strata/internal/gitops/gittest"
	"github.com/strata-dev/strata/internal/gitops/source"
	"github.com/strata-dev/strata/internal/scheme"
	"github.com/strata-dev/strata/internal/testenv"
	"github.com/strata-dev/strata/internal/testenv/managedtest"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

var (
	env      *testenv.Env
	fileRoot string
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, &env, func() (*testenv.Env, error) {
		d, err := os.MkdirTemp("", "promotion-repos-")
		if err != nil {
			return nil, err
		}
		fileRoot = d
		return testenv.Start()
	}))
}

// gitAuth is the gitops source's credential code, as the manager wires it.
func gitAuth(url string, secret map[string][]byte) (transport.AuthMethod, error) {
	return source.AuthMethod(url, source.AuthFromSecret(url, secret))
}

// startDeployers runs the gitops (GitRepository, Sync) and analysis
// controllers until the test ends.
func startDeployers(t *testing.T) {
	t.Helper()
	state := t.TempDir()
	managedtest.StartManager(t, env.Config, func(mgr ctrl.Manager) error {
		if err := gitopscontroller.Setup(mgr, gitopscontroller.Options{StateDir: state, Workers: 2, HealthPollInterval: 300 * time.Millisecond,
			AllowFileURLs: []string{fileRoot}}); err != nil {
			return err
		}
		return deliverycontroller.Setup(mgr, deliverycontroller.Options{Workers: 2})
	})
}

// startPromotion runs the Stage controller in its own manager; stop ends it
// (and waits), as a manager restart would.
func startPromotion(t *testing.T) (stop func()) {
	t.Helper()
	skip := true
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: scheme.New(), Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0", Controller: config.Controller{SkipNameValidation: &skip}})
	if err != nil {
		t.Fatal(err)
	}
	if err := Setup(mgr, Options{Workers: 2, GitAuth: gitAuth}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

var nsCounter atomic.Int64

func newNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := fmt.Sprintf("%s-%d-%d", prefix, time.Now().Unix()%100000, nsCounter.Add(1))
	if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	return ns
}

func newRepo(t *testing.T, name string) *gittest.Repo {
	t.Helper()
	dir, err := os.MkdirTemp(fileRoot, name+"-")
	if err != nil {
		t.Fatal(err)
	}
	return gittest.NewRepo(t, dir, name)
}

func appFiles(data string) map[string]string {
	return map[string]string{"app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  version: " + fmt.Sprintf("%q", data) + "\n"}
}

func create(t *testing.T, o client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), o); err != nil {
		t.Fatalf("create %T %s: %v", o, o.GetName(), err)
	}
}

func gitRepository(ns, name, url string, ref *gitopsv1.GitRepositoryRef) *gitopsv1.GitRepository {
	return &gitopsv1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       gitopsv1.GitRepositorySpec{URL: url, Ref: ref, Interval: metav1.Duration{Duration: time.Hour}},
	}
}

func syncOf(ns, name, repo, path string) *gitopsv1.Sync {
	return &gitopsv1.Sync{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: gitopsv1.SyncSpec{SourceRef: gitopsv1.SourceReference{Name: repo}, Path: path,
			Interval: metav1.Duration{Duration: time.Hour}, Prune: gitopsv1.PruneEnabled, Wait: true},
	}
}

// fetchNow asks the GitRepository to fetch at once.
func fetchNow(t *testing.T, ns, name string) {
	t.Helper()
	g := &gitopsv1.GitRepository{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, g); err != nil {
		t.Fatal(err)
	}
	p := client.MergeFrom(g.DeepCopy())
	if g.Annotations == nil {
		g.Annotations = map[string]string{}
	}
	g.Annotations[gitopsv1.ReconcileRequestAnnotation] = time.Now().Format(time.RFC3339Nano)
	if err := env.Client.Patch(context.Background(), g, p); err != nil {
		t.Fatal(err)
	}
}

func getStage(t *testing.T, ns, name string) *deliveryv1.Stage {
	t.Helper()
	st := &deliveryv1.Stage{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, st); err != nil {
		t.Fatal(err)
	}
	return st
}

// waitStage waits until cond holds for the Stage.
func waitStage(t *testing.T, ns, name, what string, cond func(*deliveryv1.Stage) bool) *deliveryv1.Stage {
	t.Helper()
	st := &deliveryv1.Stage{}
	managedtest.Eventually(t, 60*time.Second, "stage "+ns+"/"+name+": "+what, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, st); err != nil {
			return err
		}
		if cond(st) {
			return nil
		}
		return fmt.Errorf("%s", describe(st))
	})
	return st
}

func describe(st *deliveryv1.Stage) string {
	c := conditions.Get(st, conditions.Ready)
	s := fmt.Sprintf("current=%s verified=%d", short(st.Status.CurrentRevision), len(st.Status.VerifiedRevisions))
	if c != nil {
		s += fmt.Sprintf(" Ready=%s %s: %s", c.Status, c.Reason, c.Message)
	}
	if p := st.Status.Pending; p != nil {
		s += fmt.Sprintf(" pending=%s/%s", short(p.Revision), p.WaitingFor)
	}
	if f := st.Status.InFlight; f != nil {
		s += fmt.Sprintf(" inFlight=%s", short(f.Revision))
	}
	for _, v := range st.Status.VerifiedRevisions {
		s += fmt.Sprintf(" verified:%s", short(v.Revision))
	}
	for _, h := range st.Status.History {
		s += fmt.Sprintf(" history:%s/%s", short(h.Revision), h.Result)
	}
	return s
}

func readyReason(st *deliveryv1.Stage) string {
	if c := conditions.Get(st, conditions.Ready); c != nil {
		return c.Reason
	}
	return ""
}

func verified(st *deliveryv1.Stage, rev string) bool { return isVerified(st, rev) }

func getPromotion(t *testing.T, ns, name string) *deliveryv1.Promotion {
	t.Helper()
	p := &deliveryv1.Promotion{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func waitPromotion(t *testing.T, ns, name, phase string) *deliveryv1.Promotion {
	t.Helper()
	p := &deliveryv1.Promotion{}
	managedtest.Eventually(t, 60*time.Second, "promotion "+name+" "+phase, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, p); err != nil {
			return err
		}
		if p.Status.Phase == phase {
			return nil
		}
		msg := ""
		if c := conditions.Get(p, conditions.Ready); c != nil {
			msg = c.Reason + ": " + c.Message
		}
		return fmt.Errorf("phase %q %s", p.Status.Phase, msg)
	})
	return p
}

// as is a client acting as user with groups, as `kubectl --as --as-group`.
func as(t *testing.T, user string, groups ...string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append(groups, "system:authenticated")}
	c, err := client.New(cfg, client.Options{Scheme: env.Client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// approve creates an Approval as user (the approver field set honestly: the
// admission policy that pins it is installed by `strata install`).
func approve(t *testing.T, ns, stage, rev, decision, user string, groups ...string) *deliveryv1.Approval {
	t.Helper()
	a := &deliveryv1.Approval{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "approval-"},
		Spec:       deliveryv1.ApprovalSpec{Stage: stage, Revision: rev, Decision: decision, Approver: user, Groups: groups},
	}
	if err := as(t, user, groups...).Create(context.Background(), a); err != nil {
		t.Fatalf("approval by %s: %v", user, err)
	}
	return a
}

func waitCounted(t *testing.T, a *deliveryv1.Approval, status metav1.ConditionStatus, reason string) {
	t.Helper()
	managedtest.Eventually(t, 60*time.Second, "approval "+a.Name+" counted="+string(status), func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(a), a); err != nil {
			return err
		}
		c := conditions.Get(a, deliveryv1.ConditionCounted)
		if c != nil && c.Status == status && c.Reason == reason {
			return nil
		}
		return fmt.Errorf("counted: %+v", c)
	})
}

// grant binds a Role with rules to subject in ns.
func grant(t *testing.T, ns, name string, subject rbacv1.Subject, rules ...rbacv1.PolicyRule) {
	t.Helper()
	create(t, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Rules: rules})
	create(t, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{subject}})
}

func serviceAccount(ns, name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: "ServiceAccount", Namespace: ns, Name: name}
}

// approvers lets users of the approvers group create Approvals in ns.
func allowApprovals(t *testing.T, ns string) {
	t.Helper()
	grant(t, ns, "approvers", rbacv1.Subject{Kind: "Group", Name: "system:authenticated", APIGroup: "rbac.authorization.k8s.io"},
		rbacv1.PolicyRule{APIGroups: []string{"delivery.strata.dev"}, Resources: []string{"approvals", "promotions"}, Verbs: []string{"create", "get", "list"}})
}

func repoCommit(t *testing.T, ns, name string) string {
	t.Helper()
	g := &gitopsv1.GitRepository{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, g); err != nil {
		t.Fatal(err)
	}
	if g.Spec.Ref == nil {
		return ""
	}
	return g.Spec.Ref.Commit
}

func hasHistory(st *deliveryv1.Stage, rev, result string) int {
	n := 0
	for _, h := range st.Status.History {
		if h.Revision == rev && h.Result == result {
			n++
		}
	}
	return n
}

func serviceAccountObj(ns, name string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

var _ = filepath.Join
var _ = strings.Contains

package promotion

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/gitops/gittest"
)

func TestImageTag(t *testing.T) {
	cases := map[string]struct{ in, want string }{
		"sets the tag":    {in: "resources:\n- deploy.yaml\nimages:\n- name: web\n  newTag: old\n", want: "images:\n- name: web\n  newTag: abcdef1\nresources:\n- deploy.yaml\n"},
		"adds the image":  {in: "resources:\n- deploy.yaml\n", want: "images:\n- name: web\n  newTag: abcdef1\nresources:\n- deploy.yaml\n"},
		"already the tag": {in: "images:\n- name: web\n  newTag: abcdef1\n", want: "images:\n- name: web\n  newTag: abcdef1\n"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := imageTag([]byte(tc.in), "web", tagFor("{{shortRevision}}", "abcdef1234567890"))
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.want {
				t.Errorf("got\n%s\nwant\n%s", out, tc.want)
			}
		})
	}
	if _, err := cleanPath("../etc/passwd"); err == nil {
		t.Error("a path leaving the repository was accepted")
	}
	if _, err := cleanPath(".git/config"); err == nil {
		t.Error("a path into .git was accepted")
	}
}

func gitCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestGitWriteBack: production's Stage commits a copy of the staging path
// of the promoted revision to the production branch, signed off by the
// configured author, and pushes it over smart HTTP with the GitRepository's
// credentials; the pushed commit is checked in the bare repository, the
// production Sync applies it, and the stage reports the promoted revision.
// A manager that restarts between the push and recording it pushes
// nothing more.
func TestGitWriteBack(t *testing.T) {
	startDeployers(t)
	stop := startPromotion(t)
	root := t.TempDir()
	work := gittest.NewRepo(t, t.TempDir(), "work")
	c0 := work.Commit("c0", map[string]string{"staging/cm.yaml": cmYAML("c0"), "production/cm.yaml": cmYAML("c0")})
	work.Git("branch", "production")
	bare := filepath.Join(root, "app.git")
	gitCmd(t, root, "clone", "-q", "--bare", work.Dir, bare)
	gitCmd(t, bare, "config", "http.receivepack", "true")
	base := gittest.ServeHTTP(t, root, "git", "s3cret")
	url := base + "/app.git"

	staging, prod := newNamespace(t, "staging"), newNamespace(t, "production")
	for _, ns := range []string{staging, prod} {
		create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "git"}, StringData: map[string]string{"username": "git", "password": "s3cret"}})
	}
	sr := gitRepository(staging, "app", url, &gitopsv1.GitRepositoryRef{Branch: "main"})
	sr.Spec.SecretRef = &corev1.LocalObjectReference{Name: "git"}
	create(t, sr)
	create(t, syncOf(staging, "app", "app", "staging"))
	create(t, &deliveryv1.Stage{ObjectMeta: metav1.ObjectMeta{Namespace: staging, Name: "staging"},
		Spec: deliveryv1.StageSpec{SyncRef: deliveryv1.LocalReference{Name: "app"}, Source: deliveryv1.StageSource{GitRepository: "app"}}})
	pr := gitRepository(prod, "app", url, &gitopsv1.GitRepositoryRef{Branch: "production"})
	pr.Spec.SecretRef = &corev1.LocalObjectReference{Name: "git"}
	create(t, pr)
	create(t, syncOf(prod, "app", "app", "production"))
	create(t, &deliveryv1.Stage{ObjectMeta: metav1.ObjectMeta{Namespace: prod, Name: "production"},
		Spec: deliveryv1.StageSpec{SyncRef: deliveryv1.LocalReference{Name: "app"}, Source: deliveryv1.StageSource{Stage: "staging", Namespace: staging},
			ServiceAccountName: "promoter",
			Promotion: deliveryv1.PromotionPolicy{Mode: deliveryv1.PromotionModeGitWriteBack, Auto: true,
				WriteBack: &deliveryv1.WriteBack{Branch: "production", Copy: &deliveryv1.CopyChange{From: "staging", To: "production"},
					Author: deliveryv1.GitAuthor{Name: "Strata Promoter", Email: "promoter@strata.dev"}, SignOff: true}}}})
	create(t, serviceAccountObj(prod, "promoter"))
	sa := serviceAccount(prod, "promoter")
	grant(t, prod, "promoter", sa,
		ruleFor("gitops.strata.dev", "gitrepositories", "get", "patch"), ruleFor("", "secrets", "get"))
	grant(t, staging, "read-stages", sa, ruleFor("delivery.strata.dev", "stages", "get"))
	waitStage(t, prod, "production", "runs the production branch", func(st *deliveryv1.Stage) bool { return st.Status.CurrentRevision != "" })

	work.Switch("main")
	c1 := work.Commit("c1", map[string]string{"staging/cm.yaml": cmYAML("c1")})
	work.Git("push", "-q", bare, "main")
	fetchNow(t, staging, "app")
	waitStage(t, staging, "staging", "verified c1", func(st *deliveryv1.Stage) bool { return verified(st, c1) })
	st := waitStage(t, prod, "production", "runs c1", func(st *deliveryv1.Stage) bool {
		return st.Status.CurrentRevision == c1 && st.Status.InFlight == nil && readyReason(st) == deliveryv1.ReasonStageReady
	})
	h := st.Status.History[0]
	if h.Result != "Promoted" || h.Commit == "" {
		t.Fatalf("history[0] = %+v", h)
	}
	// The pushed commit, in the bare repository.
	if got := gitCmd(t, bare, "rev-parse", "production"); got != h.Commit {
		t.Errorf("production branch at %s, history says %s", got, h.Commit)
	}
	if got := gitCmd(t, bare, "show", "production:production/cm.yaml"); got != strings.TrimSpace(cmYAML("c1")) {
		t.Errorf("production/cm.yaml = %q", got)
	}
	msg := gitCmd(t, bare, "log", "-1", "--format=%an <%ae>%n%B", "production")
	if !strings.Contains(msg, "Strata Promoter <promoter@strata.dev>") || !strings.Contains(msg, "Signed-off-by: Strata Promoter <promoter@strata.dev>") || !strings.Contains(msg, c1) {
		t.Errorf("commit message:\n%s", msg)
	}
	if parent := gitCmd(t, bare, "rev-parse", "production~1"); parent != c0 {
		t.Errorf("the write-back commit's parent is %s, want the production branch's c0", parent)
	}
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: prod, Name: "web"}, cm); err != nil || cm.Data["version"] != "c1" {
		t.Fatalf("production ConfigMap: %v %v", err, cm.Data)
	}
	if n := gitCmd(t, bare, "rev-list", "--count", "production"); n != "2" {
		t.Errorf("production branch has %s commits, want 2 (one write-back)", n)
	}

	// A crash after the push and before the commit was recorded leaves the
	// promotion in flight without its commit: the next manager finds the
	// change on the branch and pushes nothing.
	stop()
	st = getStage(t, prod, "production")
	st.Status.InFlight = &deliveryv1.InFlightPromotion{Promotion: h.Promotion, Revision: c1, StartedAt: h.Time}
	st.Status.History = st.Status.History[1:]
	if err := env.Client.Status().Update(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	startPromotion(t)
	st = waitStage(t, prod, "production", "c1 recorded again", func(st *deliveryv1.Stage) bool {
		return st.Status.InFlight == nil && hasHistory(st, c1, resultPromoted) == 1
	})
	if st.Status.History[0].Commit != h.Commit {
		t.Errorf("recorded commit %s, the pushed one is %s", st.Status.History[0].Commit, h.Commit)
	}
	if n := gitCmd(t, bare, "rev-list", "--count", "production"); n != "2" {
		t.Errorf("production branch has %s commits after the restart, want 2: the promotion was pushed twice", n)
	}
}

func cmYAML(v string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  version: " + v + "\n"
}

func ruleFor(group, resource string, verbs ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: []string{group}, Resources: []string{resource}, Verbs: verbs}
}

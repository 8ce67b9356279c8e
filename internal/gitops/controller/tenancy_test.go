package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/gitops/gittest"
	"github.com/strata-dev/strata/internal/install"
	"github.com/strata-dev/strata/internal/kit/eventmsg"
	"github.com/strata-dev/strata/internal/kit/ownership"
)

// tenantAccount creates service account name in ns that may do anything
// with ConfigMaps in ns, and nothing else.
func tenantAccount(t *testing.T, ns, name string) {
	t.Helper()
	ctx := context.Background()
	objs := []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"*"}}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: name}}},
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
}

func getConfigMap(t *testing.T, ns, name string) *corev1.ConfigMap {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cm); err != nil {
		t.Fatal(err)
	}
	return cm
}

// Hole 4: a Sync with a service account used dependsOn[].readyWhen on a
// Secret it may not read as a character-by-character oracle, and
// substituteFrom to copy a Secret it may not read into a ConfigMap. Both
// reads are now made as the service account and fail with an error naming
// the object.
func TestSyncReadsAsItsServiceAccount(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	tenantAccount(t, ns, "tenant")
	victim := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "victim-" + ns}, Data: map[string][]byte{"password": []byte("s3cr3t")}}
	if err := env.Client.Create(ctx, victim); err != nil {
		t.Fatal(err)
	}
	local := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}, Data: map[string][]byte{"password": []byte("hunter2")}}
	if err := env.Client.Create(ctx, local); err != nil {
		t.Fatal(err)
	}
	repo := gittest.NewRepo(t, t.TempDir(), "app")
	repo.Commit("one", map[string]string{
		"oracle/a.yaml": configMap("probe"),
		"leak/a.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leak\ndata:\n  password: ${password}\n",
	})
	createRepo(t, ns, "src", repo.URL(), nil, "")

	// The oracle: "is the first letter of the password an s?" (base64 of
	// "s3c" is "czNj").
	createSync(t, ns, "oracle", "src", "oracle", func(s *gitopsv1.Sync) {
		s.Spec.ServiceAccountName = "tenant"
		s.Spec.DependsOn = []gitopsv1.Dependency{{APIVersion: "v1", Kind: "Secret", Namespace: "kube-system", Name: victim.Name,
			ReadyWhen: "self.data.password.startsWith('czNj')"}}
	})
	s := waitSync(t, ns, "oracle", metav1.ConditionFalse, gitopsv1.ReasonDependencyFailed)
	if _, _, msg := readyOf(s); !strings.Contains(msg, "Secret kube-system/"+victim.Name) || !strings.Contains(msg, "forbidden") {
		t.Errorf("message = %q, want a forbidden error naming the Secret", msg)
	}
	if exists(t, "v1", "ConfigMap", ns, "probe") {
		t.Error("the Sync was applied: the readyWhen answered from a Secret its service account may not read")
	}

	// substituteFrom a Secret of its own namespace that the account may
	// not read.
	createSync(t, ns, "leak", "src", "leak", func(s *gitopsv1.Sync) {
		s.Spec.ServiceAccountName = "tenant"
		s.Spec.PostBuild = &gitopsv1.PostBuild{SubstituteFrom: []gitopsv1.SubstituteReference{{Kind: "Secret", Name: "db"}}}
	})
	s = waitSync(t, ns, "leak", metav1.ConditionFalse, gitopsv1.ReasonBuildFailed)
	if _, _, msg := readyOf(s); !strings.Contains(msg, "Secret db") || !strings.Contains(msg, "forbidden") {
		t.Errorf("message = %q, want a forbidden error naming the Secret", msg)
	}
	if exists(t, "v1", "ConfigMap", ns, "leak") {
		t.Error("a Secret the service account may not read was copied into a ConfigMap")
	}
	got := &corev1.Secret{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(victim), got); err != nil || string(got.Data["password"]) != "s3cr3t" {
		t.Errorf("victim Secret changed: %v %v", err, got.Data)
	}
}

// Holes 1/9 for Syncs: an existing object that is not the Sync's is neither
// taken over nor overwritten, and nothing of that revision is pruned, until
// its owner hands it over with the adopt annotation.
func TestSyncDoesNotTakeOverObjects(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	victim := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "victim"}, Data: map[string]string{"k": "mine"}}
	if err := env.Client.Create(ctx, victim, client.FieldOwner("kubectl-create")); err != nil {
		t.Fatal(err)
	}
	repo := gittest.NewRepo(t, t.TempDir(), "app")
	h := repo.Commit("one", map[string]string{"app/old.yaml": configMap("old")})
	createRepo(t, ns, "src", repo.URL(), nil, "")
	createSync(t, ns, "app", "src", "app", nil)
	s := waitSync(t, ns, "app", metav1.ConditionTrue, "main@sha1:"+h)
	if mf := managers(getConfigMap(t, ns, "old")); !strings.Contains(mf, "strata/sync/"+ns+"/app") || strings.Contains(mf, install.FieldManager+",") {
		t.Errorf("field managers of an applied object = %s, want the Sync's own", mf)
	}

	// The next revision drops "old" and takes in an object created with
	// kubectl.
	rev2 := push(t, repo, ns, "src", "two", map[string]string{"app/old.yaml": "", "app/victim.yaml": configMap("victim"), "app/new.yaml": configMap("new")})
	s = waitSync(t, ns, "app", metav1.ConditionFalse, ownership.ReasonResourceConflict)
	_, reason, msg := readyOf(s)
	if reason != gitopsv1.ReasonResourceConflict || !strings.Contains(msg, "ConfigMap "+ns+"/victim") || !strings.Contains(msg, "kubectl-create") {
		t.Errorf("Ready = %s: %q, want ResourceConflict naming the object and its field manager", reason, msg)
	}
	if got := getConfigMap(t, ns, "victim"); got.Data["k"] != "mine" || got.Labels[LabelSyncName] != "" {
		t.Errorf("victim changed: data %v labels %v", got.Data, got.Labels)
	}
	if !exists(t, "v1", "ConfigMap", ns, "old") {
		t.Error("a revision with a conflict pruned an object")
	}
	if s.Status.LastAppliedRevision == rev2 {
		t.Error("the revision with a conflict was recorded as applied")
	}

	// Its owner hands it over to "app"; then another Sync listing it finds
	// it owned by Sync app.
	patch := client.MergeFrom(victim.DeepCopy())
	victim.Annotations = map[string]string{ownership.AnnotationAdopt: "Sync/" + ns + "/app"}
	if err := env.Client.Patch(ctx, victim, patch); err != nil {
		t.Fatal(err)
	}
	requestReconcile(t, getSync(t, ns, "app"))
	waitSync(t, ns, "app", metav1.ConditionTrue, rev2)
	if got := getConfigMap(t, ns, "victim"); got.Data["k"] != "v" || got.Labels[LabelSyncName] != "app" || exists(t, "v1", "ConfigMap", ns, "old") {
		t.Errorf("after adoption: data %v labels %v, old exists=%v", got.Data, got.Labels, exists(t, "v1", "ConfigMap", ns, "old"))
	}
	push(t, repo, ns, "src", "rival", map[string]string{"rival/victim.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: victim\ndata:\n  k: rival\n"})
	createSync(t, ns, "rival", "src", "rival", nil)
	s = waitSync(t, ns, "rival", metav1.ConditionFalse, gitopsv1.ReasonResourceConflict)
	if _, _, msg := readyOf(s); !strings.Contains(msg, "ConfigMap "+ns+"/victim") || !strings.Contains(msg, "Sync "+ns+"/app") {
		t.Errorf("rival's message = %q, want the object and its owner Sync named", msg)
	}
	if got := getConfigMap(t, ns, "victim"); got.Data["k"] != "v" || got.Labels[LabelSyncName] != "app" {
		t.Errorf("rival changed the victim: data %v labels %v", got.Data, got.Labels)
	}
}

func managers(o client.Object) string {
	var out []string
	for _, f := range o.GetManagedFields() {
		out = append(out, f.Manager)
	}
	return strings.Join(out, ",") + ","
}

// An object handed from one Sync to another is not pruned by the first
// when it leaves the first's revision.
func TestSyncDoesNotPruneAnotherSyncsObject(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	repo := gittest.NewRepo(t, t.TempDir(), "app")
	h := repo.Commit("one", map[string]string{"a/shared.yaml": configMap("shared"), "a/own.yaml": configMap("own"), "b/shared.yaml": configMap("shared")})
	createRepo(t, ns, "src", repo.URL(), nil, "")
	createSync(t, ns, "a", "src", "a", nil)
	waitSync(t, ns, "a", metav1.ConditionTrue, "main@sha1:"+h)

	shared := getConfigMap(t, ns, "shared")
	patch := client.MergeFrom(shared.DeepCopy())
	shared.Annotations = map[string]string{ownership.AnnotationAdopt: "Sync/" + ns + "/b"}
	if err := env.Client.Patch(ctx, shared, patch); err != nil {
		t.Fatal(err)
	}
	createSync(t, ns, "b", "src", "b", nil)
	waitSync(t, ns, "b", metav1.ConditionTrue, "main@sha1:"+h)

	rev2 := push(t, repo, ns, "src", "a drops shared", map[string]string{"a/shared.yaml": ""})
	s := waitSync(t, ns, "a", metav1.ConditionTrue, rev2)
	if !exists(t, "v1", "ConfigMap", ns, "shared") {
		t.Fatal("Sync a pruned an object that Sync b owns")
	}
	if got := getConfigMap(t, ns, "shared"); got.Labels[LabelSyncName] != "b" {
		t.Errorf("shared labels = %v, want Sync b's", got.Labels)
	}
	for _, e := range s.Status.Inventory {
		if e.Name == "shared" {
			t.Errorf("Sync a still lists shared: %+v", s.Status.Inventory)
		}
	}
	if got := getSync(t, ns, "b"); !conditions.IsTrue(got, conditions.Ready) {
		t.Errorf("Sync b is not Ready after a's prune: %+v", conditions.Get(got, conditions.Ready))
	}
}

// Objects an older Strata applied with the shared field manager and this
// Sync's labels stay the Sync's, and move to its own field manager, so a
// field removed from Git is removed from the object.
func TestSyncMigratesSharedFieldManager(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	legacy := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "a", Labels: map[string]string{LabelSyncName: "app", LabelSyncNamespace: ns}},
		Data:       map[string]string{"k": "old", "gone": "x"},
	}
	if err := env.Client.Patch(ctx, legacy, client.Apply, client.FieldOwner(install.FieldManager), client.ForceOwnership); err != nil { //nolint:staticcheck // typed SSA
		t.Fatal(err)
	}
	repo := gittest.NewRepo(t, t.TempDir(), "app")
	h := repo.Commit("one", map[string]string{"app/a.yaml": configMap("a")})
	createRepo(t, ns, "src", repo.URL(), nil, "")
	createSync(t, ns, "app", "src", "app", nil)
	waitSync(t, ns, "app", metav1.ConditionTrue, "main@sha1:"+h)
	got := getConfigMap(t, ns, "a")
	if got.Data["k"] != "v" || got.Data["gone"] != "" {
		t.Errorf("data = %v, want k=v and the field no longer in Git removed", got.Data)
	}
	if mf := managers(got); strings.Contains(mf, install.FieldManager+",") || !strings.Contains(mf, "strata/sync/"+ns+"/app,") {
		t.Errorf("field managers = %s, want only the Sync's", mf)
	}
}

// Hole 11: a prune of more objects than fit in an event still leaves a
// Pruned event, ending in "… and N more".
func TestSyncPruneEventIsBounded(t *testing.T) {
	ns := newNamespace(t)
	files := map[string]string{"app/keep.yaml": configMap("keep")}
	for i := range 120 {
		files[fmt.Sprintf("app/cm%03d.yaml", i)] = configMap(fmt.Sprintf("a-config-map-with-a-long-name-%03d", i))
	}
	repo := gittest.NewRepo(t, t.TempDir(), "app")
	h := repo.Commit("many", files)
	createRepo(t, ns, "src", repo.URL(), nil, "")
	createSync(t, ns, "app", "src", "app", nil)
	waitSync(t, ns, "app", metav1.ConditionTrue, "main@sha1:"+h)
	drop := map[string]string{}
	for name := range files {
		if name != "app/keep.yaml" {
			drop[name] = ""
		}
	}
	rev2 := push(t, repo, ns, "src", "drop", drop)
	waitSync(t, ns, "app", metav1.ConditionTrue, rev2)
	var note string
	eventually(t, 20*time.Second, "Pruned event", func() (bool, string) {
		list := &eventsv1.EventList{}
		if err := env.Client.List(context.Background(), list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		for _, e := range list.Items {
			if e.Reason == gitopsv1.EventPruned && e.Regarding.Name == "app" {
				note = e.Note
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events, none Pruned", len(list.Items))
	})
	if len(note) > eventmsg.MaxLen || !strings.HasPrefix(note, "pruned ConfigMap/"+ns+"/a-config-map") || !strings.HasSuffix(note, " more") || !strings.Contains(note, "… and ") {
		t.Errorf("Pruned event (%d chars) = %q, want at most %d chars ending in \"… and N more\"", len(note), note, eventmsg.MaxLen)
	}
	if exists(t, "v1", "ConfigMap", ns, "a-config-map-with-a-long-name-119") {
		t.Error("objects were not pruned")
	}
}

// Hole 5: with --default-service-account and --no-cross-namespace-refs, a
// tenant Sync without serviceAccountName cannot create a ClusterRoleBinding
// (forbidden, naming the object), and a Sync naming a source or dependency
// in another namespace is refused with CrossNamespaceRefNotAllowed.
func TestSyncLockdown(t *testing.T) {
	ctx := context.Background()
	for _, ns := range []string{lockedNamespace, lockedOther} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	tenantAccount(t, lockedNamespace, lockedAccount)
	const crb = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: locked-tenant-escalates
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {kind: ServiceAccount, name: strata-tenant, namespace: locked-tenant}
`
	repo := gittest.NewRepo(t, t.TempDir(), "app")
	h := repo.Commit("one", map[string]string{"app/cm.yaml": configMap("a"), "app/crb.yaml": crb, "other/cm.yaml": configMap("from-other")})
	createRepo(t, lockedNamespace, "src", repo.URL(), nil, "")
	createRepo(t, lockedOther, "shared", repo.URL(), nil, "")
	waitRepo(t, lockedOther, "shared", metav1.ConditionTrue, h)

	createSync(t, lockedNamespace, "escalate", "src", "app", nil)
	s := waitSync(t, lockedNamespace, "escalate", metav1.ConditionFalse, gitopsv1.ReasonApplyFailed)
	if _, _, msg := readyOf(s); !strings.Contains(msg, "ClusterRoleBinding/locked-tenant-escalates") || !strings.Contains(msg, "forbidden") ||
		!strings.Contains(msg, "system:serviceaccount:"+lockedNamespace+":"+lockedAccount) {
		t.Errorf("message = %q, want forbidden for the default service account, naming the ClusterRoleBinding", msg)
	}
	if exists(t, "rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", "locked-tenant-escalates") {
		t.Error("a tenant Sync created a ClusterRoleBinding to cluster-admin")
	}

	createSync(t, lockedNamespace, "cross", "shared", "other", func(s *gitopsv1.Sync) {
		s.Spec.SourceRef.Namespace = lockedOther
		s.Spec.DependsOn = []gitopsv1.Dependency{{Name: "infra", Namespace: lockedOther}}
	})
	s = waitSync(t, lockedNamespace, "cross", metav1.ConditionFalse, gitopsv1.ReasonCrossNamespaceRefNotAllowed)
	_, _, msg := readyOf(s)
	if !strings.Contains(msg, "sourceRef GitRepository "+lockedOther+"/shared") {
		t.Errorf("message = %q, want the source named", msg)
	}
	if !strings.Contains(msg, "dependsOn Sync "+lockedOther+"/infra") || !conditions.IsTrue(s, conditions.Stalled) || s.Status.ObservedGeneration != s.Generation {
		t.Errorf("message = %q stalled=%v: want the dependency named and the Sync stalled at its generation", msg, conditions.IsTrue(s, conditions.Stalled))
	}
	if exists(t, "v1", "ConfigMap", lockedNamespace, "from-other") {
		t.Error("a source in another namespace was applied")
	}
}

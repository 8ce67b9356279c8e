package crashtest

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/gitops/gittest"
	"github.com/strata-dev/strata/internal/scheme"
)

const (
	// objects is the size of every revision; shared of them keep their
	// names from revision to revision, the rest are new in each.
	objects = 150
	shared  = 10
	// points is how many times the manager is killed.
	points = 24
)

// revision is one commit of the test repository: every ConfigMap it holds.
type revision struct {
	gen   int
	names []string
}

func newRevision(gen int) revision {
	r := revision{gen: gen}
	for i := range shared {
		r.names = append(r.names, fmt.Sprintf("shared-%02d", i))
	}
	for i := range objects - shared {
		r.names = append(r.names, fmt.Sprintf("g%02d-%03d", gen, i))
	}
	return r
}

func (r revision) manifest() string {
	var b strings.Builder
	for _, n := range r.names {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  generation: %q\n", n, fmt.Sprint(r.gen))
	}
	return b.String()
}

// unique is the set of names only this revision has.
func (r revision) unique() map[string]bool {
	out := map[string]bool{}
	for _, n := range r.names[shared:] {
		out[n] = true
	}
	return out
}

// TestKillDuringRevisionChangeLeavesNoOrphan changes a Sync of 150
// ConfigMaps to a revision that replaces 140 of them, and kills the manager
// with SIGKILL at spread points of that change: after k of the 280 creations
// and deletions it makes (watched on the API server), so some kills land in
// the apply, some in the prune, and the last after everything but the final
// status write. Every other time a newer commit is pushed while the manager
// is down, as a user fixing a crash-looping revision would, so the interrupted
// revision is never resumed and its objects can only be found through the
// inventory. After each restart the Sync must reach the newest revision with
// no ConfigMap of an older revision left, every object of the new one there,
// and an inventory listing exactly the new revision, each object once.
func TestKillDuringRevisionChangeLeavesNoOrphan(t *testing.T) {
	began := time.Now()
	ctx := context.Background()
	c := env.Client
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	const ns = "crash"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}

	root := t.TempDir()
	repo := gittest.NewRepo(t, root, "app")
	base := gittest.ServeHTTP(t, root, "strata", "s3cret")
	cur := newRevision(0)
	commit := func(r revision) string {
		return "main@sha1:" + repo.Commit(fmt.Sprintf("generation %d", r.gen), map[string]string{"app/objects.yaml": r.manifest()})
	}
	curRev := commit(cur)

	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	writeKubeconfig(t, env.Config, kubeconfig)
	tmp, logPath := tempDir(t, "tmp"), filepath.Join(t.TempDir(), "manager.log")
	mgr := startManager(t, kubeconfig, tmp, logPath)
	t.Cleanup(func() { mgr.kill(t) })

	if err := c.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "git"},
		Data:       map[string][]byte{"username": []byte("strata"), "password": []byte("s3cret")},
	}); err != nil {
		t.Fatal(err)
	}
	gr := &gitopsv1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: gitopsv1.GitRepositorySpec{
			URL: base + "/app", Interval: metav1.Duration{Duration: time.Hour},
			SecretRef: &corev1.LocalObjectReference{Name: "git"},
		},
	}
	if err := c.Create(ctx, gr); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &gitopsv1.Sync{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: gitopsv1.SyncSpec{
			SourceRef: gitopsv1.SourceReference{Name: "app"},
			Path:      "app",
			Interval:  metav1.Duration{Duration: time.Hour},
			// A restarted manager has an empty artifact store; look for the
			// fetched artifact again soon.
			RetryInterval: &metav1.Duration{Duration: time.Second},
			Prune:         gitopsv1.PruneEnabled,
		},
	}); err != nil {
		t.Fatal(err)
	}

	waitApplied := func(rev string) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		last := ""
		for time.Now().Before(deadline) {
			s := &gitopsv1.Sync{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, s); err != nil {
				t.Fatal(err)
			}
			if conditions.IsTrue(s, conditions.Ready) && s.Status.LastAppliedRevision == rev && s.Status.ObservedGeneration == s.Generation {
				return
			}
			if r := conditions.Get(s, conditions.Ready); r != nil {
				last = fmt.Sprintf("Ready=%s %s: %s (last applied %s)", r.Status, r.Reason, r.Message, s.Status.LastAppliedRevision)
			}
			if mgr.exited() {
				t.Fatalf("the manager exited on its own:\n%s", logTail(logPath))
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("Sync did not apply %s within 2m; last: %s\nmanager log:\n%s", rev, last, logTail(logPath))
	}

	// check compares the namespace and the inventory with want, reports
	// orphans and missing objects, and deletes the orphans so the next
	// point starts clean. It returns the number of orphans.
	check := func(point int, want revision) int {
		t.Helper()
		list := &corev1.ConfigMapList{}
		if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		expected := map[string]bool{}
		for _, n := range want.names {
			expected[n] = true
		}
		present := map[string]bool{}
		var orphans []string
		for _, cm := range list.Items {
			if cm.Name == "kube-root-ca.crt" {
				continue
			}
			present[cm.Name] = true
			if !expected[cm.Name] {
				orphans = append(orphans, cm.Name)
			}
		}
		var missing []string
		for _, n := range want.names {
			if !present[n] {
				missing = append(missing, n)
			}
		}
		s := &gitopsv1.Sync{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, s); err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		var dups, extra []string
		for _, e := range s.Status.Inventory {
			seen[e.Name]++
			if seen[e.Name] == 2 {
				dups = append(dups, e.Name)
			}
			if e.Kind != "ConfigMap" || e.Namespace != ns || !expected[e.Name] {
				extra = append(extra, e.Kind+" "+e.Namespace+"/"+e.Name)
			}
		}
		var unlisted []string
		for _, n := range want.names {
			if seen[n] == 0 {
				unlisted = append(unlisted, n)
			}
		}
		sort.Strings(orphans)
		if len(orphans) > 0 {
			t.Errorf("point %d: %d orphans left: %s", point, len(orphans), short(orphans))
		}
		if len(missing) > 0 {
			t.Errorf("point %d: %d objects of generation %d missing: %s", point, len(missing), want.gen, short(missing))
		}
		if len(dups) > 0 || len(extra) > 0 || len(unlisted) > 0 {
			t.Errorf("point %d: inventory lists %d entries twice (%s), %d not of generation %d (%s), and misses %d (%s)",
				point, len(dups), short(dups), len(extra), want.gen, short(extra), len(unlisted), short(unlisted))
		}
		for _, n := range orphans {
			if err := c.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: n}}); err != nil && !apierrors.IsNotFound(err) {
				t.Fatal(err)
			}
		}
		return len(orphans)
	}

	waitApplied(curRev)
	check(-1, cur)

	// Each change makes this many creations and deletions.
	total := 2 * (objects - shared)
	orphans := 0
	for p := range points {
		from, next := cur, newRevision(cur.gen+1)
		k := 1 + p*(total-1)/(points-1)
		superseded := p%2 == 1
		start := time.Now()

		progress, stop := watchChange(ctx, t, wc, ns, next.unique(), from.unique(), k)
		nextRev := commit(next)
		requestReconcile(ctx, t, c, gr)
		select {
		case <-progress.reached:
		case <-time.After(2 * time.Minute):
			t.Fatalf("point %d: %d of %d changes not seen within 2m (seen %d)\nmanager log:\n%s", p, k, total, progress.count(), logTail(logPath))
		}
		mgr.kill(t)
		stop()
		created, pruned := progress.counts()

		target, targetRev, how := next, nextRev, "resumed"
		if superseded {
			target = newRevision(next.gen + 1)
			targetRev = commit(target)
			how = "superseded by a newer commit"
		}
		mgr = startManager(t, kubeconfig, tmp, logPath)
		waitApplied(targetRev)
		n := check(p, target)
		orphans += n
		t.Logf("point %2d: killed after %3d created, %3d pruned (target %3d); %s; %d orphans; %s", p, created, pruned, k, how, n, time.Since(start).Round(100*time.Millisecond))
		cur = target
	}
	t.Logf("%d kill points, %d orphans in all, in %s", points, orphans, time.Since(began).Round(time.Second))
}

func short(names []string) string {
	if len(names) > 8 {
		return fmt.Sprintf("%s and %d more", strings.Join(names[:8], ", "), len(names)-8)
	}
	return strings.Join(names, ", ")
}

// requestReconcile asks the GitRepository to fetch now.
func requestReconcile(ctx context.Context, t *testing.T, c client.Client, gr *gitopsv1.GitRepository) {
	t.Helper()
	p := client.MergeFrom(gr.DeepCopy())
	if gr.Annotations == nil {
		gr.Annotations = map[string]string{}
	}
	gr.Annotations[gitopsv1.ReconcileRequestAnnotation] = time.Now().Format(time.RFC3339Nano)
	if err := c.Patch(ctx, gr, p); err != nil {
		t.Fatal(err)
	}
}

// progress counts the creations of a new revision's objects and the
// deletions of the old one's, as the API server reports them.
type progress struct {
	mu               sync.Mutex
	created, deleted map[string]bool
	reached          chan struct{}
}

func (p *progress) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.created) + len(p.deleted)
}

func (p *progress) counts() (int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.created), len(p.deleted)
}

// watchChange watches the namespace's ConfigMaps from now on and closes
// reached once k of the creations (of names in next) and deletions (of
// names in prev) have happened.
func watchChange(ctx context.Context, t *testing.T, wc client.WithWatch, ns string, next, prev map[string]bool, k int) (*progress, func()) {
	t.Helper()
	list := &corev1.ConfigMapList{}
	if err := wc.List(ctx, list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	w, err := wc.Watch(ctx, &corev1.ConfigMapList{}, client.InNamespace(ns), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	p := &progress{created: map[string]bool{}, deleted: map[string]bool{}, reached: make(chan struct{})}
	go func() {
		closed := false
		for ev := range w.ResultChan() {
			cm, ok := ev.Object.(*corev1.ConfigMap)
			if !ok {
				continue
			}
			p.mu.Lock()
			switch {
			case ev.Type == watch.Added && next[cm.Name]:
				p.created[cm.Name] = true
			case ev.Type == watch.Deleted && prev[cm.Name]:
				p.deleted[cm.Name] = true
			}
			n := len(p.created) + len(p.deleted)
			p.mu.Unlock()
			if !closed && n >= k {
				closed = true
				close(p.reached)
			}
		}
	}()
	return p, func() { w.Stop(); cancel() }
}

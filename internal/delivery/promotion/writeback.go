package promotion

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	kitreconcile "github.com/strata-dev/strata/internal/kit/reconcile"
)

// GitAuthFunc turns a GitRepository's URL and the data of its secretRef
// into go-git credentials; the manager passes the gitops source's own
// (source.AuthFromSecret and source.AuthMethod), so write-back authenticates
// exactly as the fetch does.
type GitAuthFunc func(url string, secret map[string][]byte) (transport.AuthMethod, error)

// writeBack commits the promotion of rev to the environment's branch of the
// stage's GitRepository and pushes it, with the GitRepository's credentials
// read as the tenant. It returns the branch's commit that holds the change:
// when the branch already holds it (pushed before a restart), nothing is
// committed, so a promotion is never pushed twice.
func (r *Reconciler) writeBack(ctx context.Context, sc *scope, rev string) (string, error) {
	wb := sc.policy.WriteBack
	repo := sc.repo
	auth, err := r.gitAuth(ctx, sc, repo)
	if err != nil {
		return "", err
	}
	fail := func(err error) error {
		return kitreconcile.Reasoned(deliveryv1.ReasonPromotionFailed, fmt.Errorf("write-back of revision %s to branch %s of GitRepository %s: %w", short(rev), wb.Branch, repo.Name, err))
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	fs := memfs.New()
	g, err := git.CloneContext(cctx, memory.NewStorage(), fs, &git.CloneOptions{URL: repo.Spec.URL, Auth: auth, NoCheckout: true, Tags: git.NoTags})
	if err != nil {
		return "", fail(fmt.Errorf("cannot clone: %w", err))
	}
	branch := plumbing.NewRemoteReferenceName("origin", wb.Branch)
	head, err := g.Reference(branch, true)
	if err != nil {
		return "", fail(fmt.Errorf("branch %s not found: %w", wb.Branch, err))
	}
	wt, err := g.Worktree()
	if err != nil {
		return "", fail(err)
	}
	local := plumbing.NewBranchReferenceName(wb.Branch)
	if err := wt.Checkout(&git.CheckoutOptions{Hash: head.Hash(), Branch: local, Create: true, Force: true}); err != nil {
		return "", fail(fmt.Errorf("cannot check out: %w", err))
	}
	switch {
	case wb.ImageTag != nil:
		if err := setImageTag(fs, wb.ImageTag, rev); err != nil {
			return "", kitreconcile.Terminal(deliveryv1.ReasonInvalidSpec, fmt.Errorf("spec.promotion.writeBack.imageTag: %w", err))
		}
	case wb.Copy != nil:
		c, err := g.CommitObject(plumbing.NewHash(rev))
		if err != nil {
			return "", fail(fmt.Errorf("revision %s is not in the repository: %w", short(rev), err))
		}
		if err := copyTree(fs, c, wb.Copy.From, wb.Copy.To); err != nil {
			return "", kitreconcile.Terminal(deliveryv1.ReasonInvalidSpec, fmt.Errorf("spec.promotion.writeBack.copy: %w", err))
		}
	}
	if _, err := wt.Add("."); err != nil {
		return "", fail(err)
	}
	status, err := wt.Status()
	if err != nil {
		return "", fail(err)
	}
	if status.IsClean() {
		return head.Hash().String(), nil
	}
	msg := fmt.Sprintf("Promote %s to stage %s/%s\n\nRevision: %s\n", short(rev), sc.stage.Namespace, sc.stage.Name, rev)
	if f := sc.stage.Status.InFlight; f != nil {
		msg += "Promotion: " + f.Promotion + "\n"
	}
	sig := &object.Signature{Name: wb.Author.Name, Email: wb.Author.Email, When: r.now()}
	if wb.SignOff {
		msg += fmt.Sprintf("\nSigned-off-by: %s <%s>\n", wb.Author.Name, wb.Author.Email)
	}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig, AllowEmptyCommits: false})
	if err != nil {
		return "", fail(fmt.Errorf("cannot commit: %w", err))
	}
	err = g.PushContext(cctx, &git.PushOptions{Auth: auth, RemoteName: "origin",
		RefSpecs: []config.RefSpec{config.RefSpec(local.String() + ":" + local.String())}})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return "", fail(fmt.Errorf("cannot push: %w", err))
	}
	r.fetchNow(ctx, sc)
	return h.String(), nil
}

// gitAuth reads the GitRepository's credentials as the tenant.
func (r *Reconciler) gitAuth(ctx context.Context, sc *scope, repo *gitopsv1.GitRepository) (transport.AuthMethod, error) {
	var data map[string][]byte
	if ref := repo.Spec.SecretRef; ref != nil {
		s := &corev1.Secret{}
		if err := sc.tenant.Get(ctx, types.NamespacedName{Namespace: repo.Namespace, Name: ref.Name}, s); err != nil {
			if apierrors.IsForbidden(err) {
				return nil, kitreconcile.Reasoned(deliveryv1.ReasonAccessDenied, fmt.Errorf("%s may not get Secret %s (secretRef of GitRepository %s)", userName(sc.user), ref.Name, repo.Name))
			}
			return nil, kitreconcile.Reasoned(deliveryv1.ReasonPromotionFailed, fmt.Errorf("cannot read Secret %s of GitRepository %s: %w", ref.Name, repo.Name, err))
		}
		data = s.Data
	}
	auth, err := r.opts.GitAuth(repo.Spec.URL, data)
	if err != nil {
		return nil, kitreconcile.Reasoned(deliveryv1.ReasonPromotionFailed, fmt.Errorf("credentials of GitRepository %s: %w", repo.Name, err))
	}
	return auth, nil
}

// fetchNow asks the stage's GitRepository to fetch the pushed commit at
// once, as the tenant.
func (r *Reconciler) fetchNow(ctx context.Context, sc *scope) {
	g := sc.repo.DeepCopy()
	p := client.MergeFrom(sc.repo)
	if g.Annotations == nil {
		g.Annotations = map[string]string{}
	}
	g.Annotations[gitopsv1.ReconcileRequestAnnotation] = r.now().Format(time.RFC3339Nano)
	if err := sc.tenant.Patch(ctx, g, p); err != nil {
		r.log.V(1).Info("cannot ask the GitRepository to fetch", "gitRepository", client.ObjectKeyFromObject(g), "error", err.Error())
	}
}

// cleanPath refuses paths that leave the repository.
func cleanPath(p string) (string, error) {
	c := path.Clean("/" + p)[1:]
	if c == "" || c == ".git" || strings.HasPrefix(c, ".git/") || strings.Contains(p, "..") {
		return "", fmt.Errorf("path %q is outside the repository or inside .git", p)
	}
	return c, nil
}

// setImageTag sets images[name].newTag in a kustomization.yaml.
func setImageTag(fs billy.Filesystem, c *deliveryv1.ImageTagChange, rev string) error {
	p, err := cleanPath(c.Kustomization)
	if err != nil {
		return err
	}
	f, err := fs.Open(p)
	if err != nil {
		return fmt.Errorf("cannot open %s: %w", p, err)
	}
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return err
	}
	out, err := imageTag(data, c.Image, tagFor(c.Tag, rev))
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	w, err := fs.OpenFile(p, os.O_WRONLY|os.O_TRUNC|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := w.Write(out); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func tagFor(tmpl, rev string) string {
	if tmpl == "" {
		tmpl = "{{revision}}"
	}
	s := rev
	if len(s) > 7 {
		s = s[:7]
	}
	return strings.NewReplacer("{{revision}}", rev, "{{shortRevision}}", s).Replace(tmpl)
}

// imageTag returns the kustomization with image's newTag set.
func imageTag(data []byte, image, tag string) ([]byte, error) {
	var k map[string]any
	if err := yaml.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("not a kustomization: %w", err)
	}
	if k == nil {
		k = map[string]any{}
	}
	imgs, _ := k["images"].([]any)
	found := false
	for _, i := range imgs {
		m, ok := i.(map[string]any)
		if ok && m["name"] == image {
			if m["newTag"] == tag {
				return data, nil
			}
			m["newTag"] = tag
			found = true
		}
	}
	if !found {
		imgs = append(imgs, map[string]any{"name": image, "newTag": tag})
	}
	k["images"] = imgs
	return yaml.Marshal(k)
}

// copyTree replaces to in the work tree with from of commit c.
func copyTree(fs billy.Filesystem, c *object.Commit, from, to string) error {
	from, err := cleanPath(from)
	if err != nil {
		return err
	}
	to, err = cleanPath(to)
	if err != nil {
		return err
	}
	tree, err := c.Tree()
	if err != nil {
		return err
	}
	if err := removeAll(fs, to); err != nil {
		return err
	}
	if f, err := tree.File(from); err == nil {
		return writeFile(fs, to, f)
	}
	sub, err := tree.Tree(from)
	if err != nil {
		return fmt.Errorf("%s is not in revision %s", from, short(c.Hash.String()))
	}
	return sub.Files().ForEach(func(f *object.File) error {
		return writeFile(fs, path.Join(to, f.Name), f)
	})
}

func writeFile(fs billy.Filesystem, p string, f *object.File) error {
	rd, err := f.Reader()
	if err != nil {
		return err
	}
	defer rd.Close()
	if err := fs.MkdirAll(path.Dir(p), 0o755); err != nil {
		return err
	}
	w, err := fs.OpenFile(p, os.O_WRONLY|os.O_TRUNC|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, rd); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func removeAll(fs billy.Filesystem, p string) error {
	fi, err := fs.Lstat(p)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	if fi.IsDir() {
		entries, err := fs.ReadDir(p)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := removeAll(fs, path.Join(p, e.Name())); err != nil {
				return err
			}
		}
	}
	return fs.Remove(p)
}

// authorOf returns the email of the author of commit rev in repo (the
// first stage's GitRepository), for the four-eyes rule; "" when it cannot
// be read. It clones the branch without a work tree, with the
// GitRepository's credentials read as the tenant.
func (r *Reconciler) authorOf(ctx context.Context, sc *scope, repo *gitopsv1.GitRepository, rev string) string {
	if r.opts.GitAuth == nil || repo == nil {
		return ""
	}
	auth, err := r.gitAuth(ctx, sc, repo)
	if err != nil {
		return ""
	}
	branch := "main"
	if ref := repo.Spec.Ref; ref != nil && ref.Branch != "" {
		branch = ref.Branch
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	g, err := git.CloneContext(cctx, memory.NewStorage(), nil, &git.CloneOptions{URL: repo.Spec.URL, Auth: auth,
		ReferenceName: plumbing.NewBranchReferenceName(branch), SingleBranch: true, NoCheckout: true, Tags: git.NoTags})
	if err != nil {
		r.log.V(1).Info("cannot read the author of a revision", "gitRepository", client.ObjectKeyFromObject(repo), "error", err.Error())
		return ""
	}
	c, err := g.CommitObject(plumbing.NewHash(rev))
	if err != nil {
		return ""
	}
	return c.Author.Email
}

package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/install"
	"github.com/strata-dev/strata/internal/kit/ssa"
	"github.com/strata-dev/strata/internal/scheme"
)

// upSyncName names the GitRepository and Sync that `strata up --sync`
// creates in the default namespace.
const upSyncName = "strata-up"

// parseUpSync splits PATH_OR_URL[#path] into a Git URL, a branch (the
// current one for a local repository) and the path in it.
func parseUpSync(value string) (url, branch, path string, err error) {
	loc, path, _ := strings.Cut(value, "#")
	if strings.Contains(loc, "://") || strings.Contains(loc, "@") {
		return loc, "", path, nil
	}
	abs, err := filepath.Abs(loc)
	if err != nil {
		return "", "", "", fmt.Errorf("cannot resolve %s: %w", loc, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return "", "", "", fmt.Errorf("--sync %s: %w", loc, err)
	}
	r, err := git.PlainOpenWithOptions(abs, &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return "", "", "", fmt.Errorf("--sync %s is not a Git repository: %w", loc, err)
	}
	if head, err := r.Head(); err == nil && head.Name().IsBranch() {
		branch = head.Name().Short()
	}
	return "file://" + abs, branch, path, nil
}

// upSyncFileRoots adds the local repository of --sync to the folders file
// URLs may read: `strata up --sync PATH` allows exactly that path.
func upSyncFileRoots(value string, roots []string) ([]string, error) {
	if value == "" {
		return roots, nil
	}
	url, _, _, err := parseUpSync(value)
	if err != nil {
		return nil, err
	}
	if p, ok := strings.CutPrefix(url, "file://"); ok {
		roots = append(append([]string(nil), roots...), p)
	}
	return roots, nil
}

// applyUpSync creates (or updates) a GitRepository and a Sync for
// `strata up --sync`.
func applyUpSync(ctx context.Context, cfg *rest.Config, value string) (string, error) {
	url, branch, path, err := parseUpSync(value)
	if err != nil {
		return "", err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return "", fmt.Errorf("cannot build client: %w", err)
	}
	repo := &gitopsv1.GitRepository{
		TypeMeta:   metav1.TypeMeta{APIVersion: gitopsv1.GroupVersion.String(), Kind: "GitRepository"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: upSyncName},
		Spec:       gitopsv1.GitRepositorySpec{URL: url, Interval: metav1.Duration{Duration: 30 * time.Second}},
	}
	if branch != "" {
		repo.Spec.Ref = &gitopsv1.GitRepositoryRef{Branch: branch}
	}
	s := &gitopsv1.Sync{
		TypeMeta:   metav1.TypeMeta{APIVersion: gitopsv1.GroupVersion.String(), Kind: "Sync"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: upSyncName},
		Spec: gitopsv1.SyncSpec{
			SourceRef: gitopsv1.SourceReference{Kind: "GitRepository", Name: upSyncName},
			Path:      path,
			Interval:  metav1.Duration{Duration: time.Minute},
			Prune:     gitopsv1.PruneEnabled,
		},
	}
	for _, o := range []client.Object{repo, s} {
		if err := ssa.Apply(ctx, c, o, ssa.Options{FieldManager: install.FieldManager, Policy: ssa.Force}); err != nil {
			return "", fmt.Errorf("cannot apply %s %s: %w", o.GetObjectKind().GroupVersionKind().Kind, upSyncName, err)
		}
	}
	return fmt.Sprintf("syncing %s (path %q) as default/%s", url, path, upSyncName), nil
}

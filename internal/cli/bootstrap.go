package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/gitops/inputs"
	"github.com/strata-dev/strata/internal/gitops/source"
	"github.com/strata-dev/strata/internal/install"
)

func init() { extraCommands = append(extraCommands, newBootstrapCommand) }

// bootstrapName names the GitRepository, Sync and credentials Secret that
// `strata bootstrap` creates in the install namespace.
const bootstrapName = "strata"

type bootstrapOptions struct {
	url, branch, path string
	interval          time.Duration
	// credentials, as a GitRepository's secretRef holds them
	username, password, token      string
	privateKeyFile, knownHostsFile string
	passphrase                     string
	authorName, authorEmail        string
	install                        install.Options
}

func newBootstrapCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "bootstrap",
		Short: "Install Strata from a Git repository that then keeps it up to date",
	}
	var o bootstrapOptions
	var cf *clusterFlags
	cmd := &cobra.Command{
		Use:   "git --url URL --branch BRANCH --path clusters/NAME",
		Short: "Commit the install manifests, a GitRepository and a Sync to a Git repository, and apply them",
		Long: `bootstrap git commits to PATH on BRANCH (creating it if needed):
  PATH/strata-system/install.yaml   what strata install applies
  PATH/strata-system/sync.yaml      a GitRepository of URL and a Sync of PATH
pushes, and applies both, marked as the Sync's own, so from then on Strata
applies PATH — including its own upgrades — from Git. Credentials take the
same forms as a GitRepository's secretRef (username/password or bearer
token over HTTPS, an SSH identity with known_hosts); they are stored in the
Secret "strata" of the install namespace, never in Git. Running it again
with the same options changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.url == "" || o.branch == "" || o.path == "" {
				return &ExitError{Code: 2, Err: errors.New("--url, --branch and --path are required")}
			}
			if o.install.Version == "" {
				o.install.Version = Version
			}
			o.install.Namespace = cf.namespace
			if o.install.Namespace == "" {
				o.install.Namespace = install.DefaultNamespace
			}
			cfg, err := cf.config()
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if err := runBootstrap(cmd.Context(), cmd, cfg, o); err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			return nil
		},
	}
	cf = addClusterFlags(cmd, false)
	cmd.Flags().Lookup("namespace").Usage = "namespace of the manager, the GitRepository and the Sync (default strata-system)"
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "", "Git repository URL (https://, ssh:// or file://)")
	f.StringVar(&o.branch, "branch", "main", "branch to commit to and sync from")
	f.StringVar(&o.path, "path", "", "folder of this cluster in the repository, e.g. clusters/prod")
	f.DurationVar(&o.interval, "interval", time.Minute, "how often the repository is fetched")
	f.StringVar(&o.username, "username", "", "HTTPS basic auth user")
	f.StringVar(&o.password, "password", "", "HTTPS basic auth password (or the SSH key's passphrase)")
	f.StringVar(&o.token, "token", "", "HTTPS bearer token")
	f.StringVar(&o.privateKeyFile, "private-key-file", "", "SSH private key")
	f.StringVar(&o.knownHostsFile, "known-hosts-file", "", "known_hosts with the SSH server's key")
	f.StringVar(&o.authorName, "author-name", "strata", "commit author name")
	f.StringVar(&o.authorEmail, "author-email", "strata@strata.dev", "commit author e-mail")
	f.StringSliceVar(&o.install.Subsystems, "subsystems", nil, "subsystems the manager runs (default: all)")
	f.StringVar(&o.install.Image, "image", "", "manager image (default <registry>/strata:<version>)")
	f.StringVar(&o.install.Registry, "registry", install.DefaultRegistry, "registry of the manager image")
	f.StringVar(&o.install.Version, "version", "", "image tag (default: this binary's version)")
	f.BoolVar(&o.install.Lockdown, "lockdown", false, "see strata install --help")
	root.AddCommand(cmd)
	return root
}

// secretData is the credentials in the form of a GitRepository secretRef.
func (o bootstrapOptions) secretData() (map[string][]byte, error) {
	data := map[string][]byte{}
	set := func(k, v string) {
		if v != "" {
			data[k] = []byte(v)
		}
	}
	set("username", o.username)
	set("password", o.password)
	set("bearerToken", o.token)
	for k, file := range map[string]string{"identity": o.privateKeyFile, "known_hosts": o.knownHostsFile} {
		if file == "" {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", file, err)
		}
		data[k] = b
	}
	return data, nil
}

func runBootstrap(ctx context.Context, cmd *cobra.Command, cfg *rest.Config, o bootstrapOptions) error {
	out := cmd.OutOrStdout()
	data, err := o.secretData()
	if err != nil {
		return err
	}
	auth, err := source.AuthMethod(o.url, source.AuthFromSecret(o.url, data))
	if err != nil {
		return fmt.Errorf("credentials for %s: %w", o.url, err)
	}
	ns := o.install.Namespace
	repo := &gitopsv1.GitRepository{
		TypeMeta:   metav1.TypeMeta{APIVersion: gitopsv1.GroupVersion.String(), Kind: "GitRepository"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: bootstrapName},
		Spec: gitopsv1.GitRepositorySpec{URL: o.url, Interval: metav1.Duration{Duration: o.interval},
			Ref: &gitopsv1.GitRepositoryRef{Branch: o.branch}},
	}
	if len(data) > 0 {
		repo.Spec.SecretRef = &corev1.LocalObjectReference{Name: bootstrapName}
	}
	sync := &gitopsv1.Sync{
		TypeMeta:   metav1.TypeMeta{APIVersion: gitopsv1.GroupVersion.String(), Kind: "Sync"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: bootstrapName},
		Spec: gitopsv1.SyncSpec{SourceRef: gitopsv1.SourceReference{Kind: "GitRepository", Name: bootstrapName},
			Path: o.path, Interval: metav1.Duration{Duration: 10 * time.Minute}, Prune: gitopsv1.PruneEnabled},
	}
	objs, err := install.Objects(o.install)
	if err != nil {
		return err
	}
	owner := inputs.Owner(sync)
	for _, obj := range []runtime.Object{repo, sync} {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return err
		}
		u := &unstructured.Unstructured{Object: m}
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
		unstructured.RemoveNestedField(u.Object, "status")
		objs = append(objs, u)
	}
	// Everything is marked as the Sync's own, so the Sync updates and
	// prunes it later instead of reporting a conflict with the bootstrap.
	for _, u := range objs {
		owner.SetMark(u)
	}
	installYAML, err := install.YAML(objs[:len(objs)-2])
	if err != nil {
		return err
	}
	syncYAML, err := install.YAML(objs[len(objs)-2:])
	if err != nil {
		return err
	}
	files := map[string][]byte{
		filepath.Join(o.path, "strata-system", "install.yaml"): installYAML,
		filepath.Join(o.path, "strata-system", "sync.yaml"):    syncYAML,
	}
	hash, changed, err := commitFiles(ctx, o, auth, files)
	if err != nil {
		return err
	}
	if changed {
		fmt.Fprintf(out, "► committed and pushed %s to %s (%s)\n", o.path, o.branch, hash)
	} else {
		fmt.Fprintf(out, "✔ %s on %s is up to date (%s)\n", o.path, o.branch, hash)
	}

	// Apply: the install, the credentials Secret (never in Git), then the
	// GitRepository and Sync.
	if err := install.ApplyObjectsAs(ctx, cfg, objs[:len(objs)-2], owner.FieldManager()); err != nil {
		return err
	}
	if len(data) > 0 {
		secret := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret",
			"metadata": map[string]any{"namespace": ns, "name": bootstrapName}, "type": "Opaque"}}
		enc := map[string]any{}
		for k, v := range data {
			enc[k] = v
		}
		b, _ := json.Marshal(enc)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		secret.Object["data"] = m
		if err := install.ApplyObjectsAs(ctx, cfg, []*unstructured.Unstructured{secret}, install.FieldManager); err != nil {
			return err
		}
	}
	if err := install.ApplyObjectsAs(ctx, cfg, objs[len(objs)-2:], owner.FieldManager()); err != nil {
		return err
	}
	fmt.Fprintf(out, "✔ applied the install, GitRepository %s/%s and Sync %s/%s\n", ns, bootstrapName, ns, bootstrapName)
	return nil
}

// commitFiles clones branch of o.url, writes files, and commits and pushes
// them when they differ. It returns the head commit and whether it pushed.
func commitFiles(ctx context.Context, o bootstrapOptions, auth transport.AuthMethod, files map[string][]byte) (string, bool, error) {
	dir, err := os.MkdirTemp("", "strata-bootstrap-")
	if err != nil {
		return "", false, err
	}
	defer os.RemoveAll(dir)
	branch := plumbing.NewBranchReferenceName(o.branch)
	r, err := git.PlainCloneContext(ctx, dir, false, &git.CloneOptions{URL: o.url, Auth: auth, ReferenceName: branch, SingleBranch: true})
	switch {
	case err == nil:
	case errors.Is(err, transport.ErrEmptyRemoteRepository) || isRefNotFound(err):
		// An empty repository, or a new branch: start the branch here.
		_ = os.RemoveAll(dir)
		r, err = git.PlainInit(dir, false)
		if err != nil {
			return "", false, err
		}
		if _, err := r.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{o.url}}); err != nil {
			return "", false, err
		}
		if err := r.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, branch)); err != nil {
			return "", false, err
		}
	default:
		return "", false, fmt.Errorf("cannot clone %s branch %s: %w", o.url, o.branch, err)
	}
	wt, err := r.Worktree()
	if err != nil {
		return "", false, err
	}
	for p, content := range files {
		full := filepath.Join(dir, p)
		if old, err := os.ReadFile(full); err == nil && bytes.Equal(old, content) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return "", false, err
		}
		if err := os.WriteFile(full, content, 0o644); err != nil {
			return "", false, err
		}
		if _, err := wt.Add(filepath.ToSlash(p)); err != nil {
			return "", false, fmt.Errorf("cannot add %s: %w", p, err)
		}
	}
	st, err := wt.Status()
	if err != nil {
		return "", false, err
	}
	if st.IsClean() {
		head, err := r.Head()
		if err != nil {
			return "", false, err
		}
		return head.Hash().String(), false, nil
	}
	h, err := wt.Commit("strata bootstrap: install manifests and Sync of "+o.path, &git.CommitOptions{
		Author: &object.Signature{Name: o.authorName, Email: o.authorEmail, When: time.Now()},
	})
	if err != nil {
		return "", false, fmt.Errorf("cannot commit: %w", err)
	}
	err = r.PushContext(ctx, &git.PushOptions{RemoteName: "origin", Auth: auth,
		RefSpecs: []gitconfig.RefSpec{gitconfig.RefSpec(branch.String() + ":" + branch.String())}})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return "", false, fmt.Errorf("cannot push to %s: %w", o.url, err)
	}
	return h.String(), true, nil
}

func isRefNotFound(err error) bool {
	var nf git.NoMatchingRefSpecError
	return errors.As(err, &nf) || errors.Is(err, plumbing.ErrReferenceNotFound)
}

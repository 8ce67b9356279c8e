package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/memory"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Ref selects what to check out; see the GitRepository API.
type Ref struct {
	Branch, Tag, SemVer, Commit string
}

// Auth holds credentials read from a Secret. Empty fields are unused.
type Auth struct {
	Username, Password string
	BearerToken        string
	// Identity is an SSH private key (PEM) and KnownHosts the accepted host
	// keys in known_hosts format.
	Identity, KnownHosts []byte
	// Passphrase of the identity, if any.
	Passphrase string
}

// AuthFromSecret reads the credentials of a GitRepository's secretRef from
// the Secret's data, for a repository at url: over HTTP(S) `username` and
// `password` (basic auth) or `bearerToken`; over SSH `identity` (a private
// key), `known_hosts` and `password` as the identity's passphrase. Keys that
// do not apply to url's protocol are dropped. The controller and the CLI both
// call it, so they authenticate alike.
func AuthFromSecret(url string, data map[string][]byte) Auth {
	a := Auth{
		Username:    string(data["username"]),
		Password:    string(data["password"]),
		BearerToken: string(data["bearerToken"]),
		Identity:    data["identity"],
		KnownHosts:  data["known_hosts"],
		Passphrase:  string(data["password"]),
	}
	if strings.HasPrefix(url, "http") {
		a.Passphrase = ""
	} else {
		a.Username, a.Password = "", ""
	}
	return a
}

// ErrRefNotFound is returned when the branch, tag, semver range or commit
// does not exist in the repository.
var ErrRefNotFound = errors.New("reference not found")

// Resolved is a ref resolved against the remote without fetching objects.
type Resolved struct {
	// Name is the branch or tag name ("" for a bare commit).
	Name string
	// RefName is the full reference fetched (refs/heads/main).
	RefName plumbing.ReferenceName
	// Hash is the commit hash (peeled for annotated tags).
	Hash string
	// Pinned is set when a commit was asked for on a branch: the branch is
	// fetched whole and the commit checked out.
	Pinned bool
}

// Revision formats a revision as the API shows it: `main@sha1:<hex>`, or
// `sha1:<hex>` without a name.
func Revision(name, hash string) string {
	if name == "" {
		return "sha1:" + hash
	}
	return name + "@sha1:" + hash
}

func authMethod(url string, a Auth) (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(url)
	if err != nil {
		return nil, fmt.Errorf("invalid URL: %w", err)
	}
	switch ep.Protocol {
	case "http", "https":
		if a.BearerToken != "" {
			return &githttp.TokenAuth{Token: a.BearerToken}, nil
		}
		if a.Username != "" || a.Password != "" {
			return &githttp.BasicAuth{Username: a.Username, Password: a.Password}, nil
		}
		return nil, nil
	case "ssh":
		if len(a.Identity) == 0 {
			return nil, errors.New("an ssh URL needs an identity (SSH private key) in the secret")
		}
		user := ep.User
		if user == "" {
			user = "git"
		}
		pk, err := gitssh.NewPublicKeys(user, a.Identity, a.Passphrase)
		if err != nil {
			return nil, fmt.Errorf("cannot parse the SSH identity: %w", err)
		}
		if len(a.KnownHosts) == 0 {
			return nil, errors.New("an ssh URL needs known_hosts in the secret")
		}
		cb, err := knownHostsCallback(a.KnownHosts)
		if err != nil {
			return nil, err
		}
		pk.HostKeyCallback = guardHostKey(cb)
		return pk, nil
	default:
		return nil, nil
	}
}

func knownHostsCallback(data []byte) (ssh.HostKeyCallback, error) {
	f, err := os.CreateTemp("", "known_hosts-")
	if err != nil {
		return nil, fmt.Errorf("cannot write known_hosts: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot write known_hosts: %w", err)
	}
	f.Close()
	cb, err := knownhosts.New(f.Name())
	if err != nil {
		return nil, fmt.Errorf("cannot parse known_hosts: %w", err)
	}
	return cb, nil
}

// Resolve lists the remote's references and picks the one ref selects, so a
// controller can skip the clone when the revision is already stored.
func Resolve(ctx context.Context, url string, ref Ref, a Auth) (Resolved, error) {
	auth, err := authMethod(url, a)
	if err != nil {
		return Resolved{}, err
	}
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{url}})
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: auth, PeelingOption: git.AppendPeeled})
	if err != nil {
		return Resolved{}, fmt.Errorf("cannot list references of %s: %w", url, err)
	}
	byName := map[plumbing.ReferenceName]string{}
	for _, r := range refs {
		if r.Type() == plumbing.HashReference {
			byName[r.Name()] = r.Hash().String()
		}
	}
	peeled := func(n plumbing.ReferenceName) string {
		if h, ok := byName[plumbing.ReferenceName(string(n)+"^{}")]; ok {
			return h
		}
		return byName[n]
	}
	switch {
	case ref.Commit != "" && ref.Branch == "":
		return Resolved{Hash: ref.Commit, Pinned: true}, nil
	case ref.SemVer != "":
		c, err := semver.NewConstraint(ref.SemVer)
		if err != nil {
			return Resolved{}, fmt.Errorf("invalid semver range %q: %w", ref.SemVer, err)
		}
		var best *semver.Version
		var bestTag string
		for n := range byName {
			if !n.IsTag() || strings.HasSuffix(string(n), "^{}") {
				continue
			}
			v, err := semver.NewVersion(n.Short())
			if err != nil || !c.Check(v) {
				continue
			}
			if best == nil || v.GreaterThan(best) {
				best, bestTag = v, n.Short()
			}
		}
		if best == nil {
			return Resolved{}, fmt.Errorf("no tag matches semver range %q: %w", ref.SemVer, ErrRefNotFound)
		}
		n := plumbing.NewTagReferenceName(bestTag)
		return Resolved{Name: bestTag, RefName: n, Hash: peeled(n)}, nil
	case ref.Tag != "":
		n := plumbing.NewTagReferenceName(ref.Tag)
		h := peeled(n)
		if h == "" {
			return Resolved{}, fmt.Errorf("tag %q: %w", ref.Tag, ErrRefNotFound)
		}
		return Resolved{Name: ref.Tag, RefName: n, Hash: h}, nil
	default:
		b := ref.Branch
		if b == "" {
			b = "main"
		}
		n := plumbing.NewBranchReferenceName(b)
		h := byName[n]
		if h == "" {
			return Resolved{}, fmt.Errorf("branch %q: %w", b, ErrRefNotFound)
		}
		if ref.Commit != "" {
			return Resolved{Name: b, RefName: n, Hash: ref.Commit, Pinned: true}, nil
		}
		return Resolved{Name: b, RefName: n, Hash: h}, nil
	}
}

// Checkout clones the resolved ref into dir (shallowly unless a commit is
// pinned) and returns the checked-out commit's full hash.
func Checkout(ctx context.Context, url string, r Resolved, a Auth, dir string) (string, error) {
	auth, err := authMethod(url, a)
	if err != nil {
		return "", err
	}
	if r.RefName != "" {
		opts := &git.CloneOptions{URL: url, Auth: auth, ReferenceName: r.RefName, SingleBranch: true, Tags: git.NoTags}
		if !r.Pinned {
			opts.Depth = 1
		}
		repo, err := git.PlainCloneContext(ctx, dir, false, opts)
		if err != nil {
			return "", fmt.Errorf("cannot clone %s at %s: %w", url, r.RefName.Short(), err)
		}
		if r.Pinned {
			return checkoutCommit(repo, r.Hash)
		}
		head, err := repo.Head()
		if err != nil {
			return "", fmt.Errorf("cannot read HEAD: %w", err)
		}
		return head.Hash().String(), nil
	}
	// A commit alone: fetch everything and check it out.
	repo, err := git.PlainCloneContext(ctx, dir, false, &git.CloneOptions{URL: url, Auth: auth, NoCheckout: true})
	if err != nil {
		return "", fmt.Errorf("cannot clone %s: %w", url, err)
	}
	return checkoutCommit(repo, r.Hash)
}

func checkoutCommit(repo *git.Repository, hash string) (string, error) {
	h, err := repo.ResolveRevision(plumbing.Revision(hash))
	if err != nil {
		return "", fmt.Errorf("commit %q: %w", hash, ErrRefNotFound)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return "", fmt.Errorf("cannot open worktree: %w", err)
	}
	if err := wt.Checkout(&git.CheckoutOptions{Hash: *h, Force: true}); err != nil {
		return "", fmt.Errorf("cannot check out %s: %w", hash, err)
	}
	return h.String(), nil
}

// AuthMethod is the go-git transport authentication for url with a, as
// fetching uses it; `strata bootstrap git` pushes with it, so the CLI and
// the controller authenticate alike.
func AuthMethod(url string, a Auth) (transport.AuthMethod, error) { return authMethod(url, a) }

package build

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-dev/strata/internal/gitops/gittest"
)

// remoteRepo serves a repository with a kustomize base over smart HTTP on
// loopback and returns a URL with the credentials in it.
func remoteRepo(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	repo := gittest.NewRepo(t, root, "shared")
	repo.Commit("base", map[string]string{
		"base/kustomization.yaml":  "resources: [cm.yaml]\n",
		"base/cm.yaml":             strings.ReplaceAll(cm, "%s", "remote"),
		"base2/kustomization.yaml": "resources: [cm.yaml]\n",
		"base2/cm.yaml":            strings.ReplaceAll(cm, "%s", "remote2"),
	})
	repo.Tag("v1")
	return strings.Replace(gittest.ServeHTTP(t, root, "alice", "s3cret"), "http://", "http://alice:s3cret@", 1) + "/shared"
}

// tempDirs counts the entries of the temporary folder, where kustomize and
// a remote-base fetch make their clones.
func tempDirs(t *testing.T) int {
	t.Helper()
	e, err := os.ReadDir(os.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return len(e)
}

// isolateTemp points TMPDIR at an empty folder for the rest of the test.
func isolateTemp(t *testing.T) {
	t.Helper()
	t.Setenv("TMPDIR", t.TempDir())
}

// TestRemoteBasesRefused: with remote bases off (the default) a
// kustomization naming one fails with ErrRemoteBase naming the file and the
// base; nothing is fetched and no temporary folder is left. A remote file is
// refused even with remote bases on. An overlay without one still builds.
func TestRemoteBasesRefused(t *testing.T) {
	remote := remoteRepo(t)
	local := "base/kustomization.yaml"
	files := map[string]string{
		local:                   "resources: [cm.yaml]\n",
		"base/cm.yaml":          strings.ReplaceAll(cm, "%s", "a"),
		"ok/kustomization.yaml": "resources: [../base]\n",
	}
	cases := map[string]struct {
		kustomization string
		opts          Options
		want          string
	}{
		"git resource":              {kustomization: "resources: [../base, '" + remote + "//base?ref=v1']\n", want: remote + "//base?ref=v1"},
		"bases":                     {kustomization: "bases: ['" + remote + "//base']\n", want: remote + "//base"},
		"components":                {kustomization: "components: ['" + remote + "//base']\n", want: remote + "//base"},
		"github shorthand":          {kustomization: "resources: ['github.com/example/repo/base?ref=v1']\n", want: "github.com/example/repo/base?ref=v1"},
		"scp style":                 {kustomization: "resources: ['git@example.com:org/repo.git//base']\n", want: "git@example.com:org/repo.git//base"},
		"through a local base":      {kustomization: "resources: [../mid]\n", want: remote + "//base"},
		"file URL even when on":     {kustomization: "resources: ['file:///etc//x']\n", opts: Options{RemoteBases: true}, want: "file:///etc//x"},
		"remote patch file":         {kustomization: "resources: [../base]\npatches:\n- path: https://example.com/p.yaml\n", opts: Options{RemoteBases: true}, want: "https://example.com/p.yaml"},
		"inline transformer config": {kustomization: "resources: [../base]\ntransformers:\n- |-\n  apiVersion: builtin\n  kind: PatchTransformer\n  metadata: {name: p}\n  path: https://example.com/p.yaml\n", opts: Options{RemoteBases: true}, want: "https://example.com/p.yaml"},
		"remote generator file":     {kustomization: "configMapGenerator:\n- name: x\n  files: [k=https://example.com/f]\n", opts: Options{RemoteBases: true}, want: "k=https://example.com/f"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := map[string]string{"app/kustomization.yaml": tc.kustomization, "mid/kustomization.yaml": "resources: ['" + remote + "//base']\n"}
			for k, v := range files {
				f[k] = v
			}
			root := writeTree(t, f)
			isolateTemp(t)
			before := tempDirs(t)
			_, err := Build(root, "app", tc.opts)
			if !errors.Is(err, ErrRemoteBase) {
				t.Fatalf("err = %v, want ErrRemoteBase", err)
			}
			wantFile := "app/kustomization.yaml"
			if name == "through a local base" {
				wantFile = "mid/kustomization.yaml"
			}
			if !strings.HasPrefix(err.Error(), wantFile+": ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to name %s and %s", err, wantFile, tc.want)
			}
			if after := tempDirs(t); after != before {
				t.Errorf("%d temporary folders before the build, %d after", before, after)
			}
		})
	}
	// A remote base in an overlay the build does not reach does not matter.
	root := writeTree(t, map[string]string{
		local: files[local], "base/cm.yaml": files["base/cm.yaml"], "ok/kustomization.yaml": files["ok/kustomization.yaml"],
		"other/kustomization.yaml": "resources: ['" + remote + "//base']\n",
	})
	if objs, err := Build(root, "ok", Options{}); err != nil || len(objs) != 1 {
		t.Fatalf("local overlay: %v %v", objs, err)
	}
}

// TestRemoteBasesAllowed: with remote bases on, a Git base is fetched
// (by branch, tag or default branch) and built; a failing or hanging fetch
// fails naming the file and the base, bounded by the timeout. No build
// leaves a temporary folder.
func TestRemoteBasesAllowed(t *testing.T) {
	remote := remoteRepo(t)
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(hang); slow.Close() })
	ok := map[string]struct {
		urls []string
		want []string
	}{
		"tag":                       {[]string{remote + "//base?ref=v1"}, []string{"p-local", "p-remote"}},
		"branch":                    {[]string{remote + "//base?ref=main"}, []string{"p-local", "p-remote"}},
		"default branch":            {[]string{remote + "//base"}, []string{"p-local", "p-remote"}},
		"one URL prefixing another": {[]string{remote + "//base", remote + "//base2"}, []string{"p-local", "p-remote", "p-remote2"}},
	}
	for name, tc := range ok {
		t.Run(name, func(t *testing.T) {
			root := writeTree(t, map[string]string{
				"app/kustomization.yaml": "resources: ['" + strings.Join(tc.urls, "', '") + "', cm.yaml]\nnamePrefix: p-\n" +
					"patches:\n- patch: |-\n    apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: local, annotations: {path: 'https://example.com/doc'}}\n",
				"app/cm.yaml": strings.ReplaceAll(cm, "%s", "local"),
			})
			isolateTemp(t)
			before := tempDirs(t)
			objs, err := Build(root, "app", Options{RemoteBases: true})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, o.GetName())
			}
			if d := cmp.Diff(tc.want, sortedCopy(got)); d != "" {
				t.Errorf("objects (-want +got):\n%s", d)
			}
			if after := tempDirs(t); after != before {
				t.Errorf("%d temporary folders before the build, %d after", before, after)
			}
		})
	}
	bad := map[string]struct {
		url, want string
		timeout   time.Duration
	}{
		"missing ref":    {remote + "//base?ref=nope", "reference not found", 0},
		"missing folder": {remote + "//nope?ref=v1", `folder "nope" not found`, 0},
		"unreachable":    {"http://127.0.0.1:1/x//base", "127.0.0.1:1", 0},
		"hangs":          {slow.URL + "/x//base", "timed out", 500 * time.Millisecond},
		"no separator":   {"https://example.com/org/repo/base", "separate them with //", 0},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			root := writeTree(t, map[string]string{"app/kustomization.yaml": "resources: ['" + tc.url + "']\n"})
			isolateTemp(t)
			before := tempDirs(t)
			_, err := Build(root, "app", Options{RemoteBases: true, RemoteBaseTimeout: tc.timeout})
			if err == nil || !strings.HasPrefix(err.Error(), "app/kustomization.yaml: remote base") ||
				!strings.Contains(err.Error(), tc.url) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to name app/kustomization.yaml, %s and %q", err, tc.url, tc.want)
			}
			if after := tempDirs(t); after != before {
				t.Errorf("%d temporary folders before the build, %d after", before, after)
			}
		})
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestSplitRemote(t *testing.T) {
	cases := map[string][3]string{
		"https://host/org/repo//deploy/base?ref=v1":      {"https://host/org/repo", "deploy/base", "v1"},
		"https://host/org/repo.git/deploy?version=v2":    {"https://host/org/repo.git", "deploy", "v2"},
		"github.com/org/repo/deploy?ref=main":            {"https://github.com/org/repo", "deploy", "main"},
		"git@github.com:org/repo/deploy":                 {"git@github.com:org/repo", "deploy", ""},
		"ssh://git@host/org/repo.git":                    {"ssh://git@host/org/repo.git", "", ""},
		"https://dev.azure.com/o/p/_git/repo/base?ref=x": {"https://dev.azure.com/o/p/_git/repo", "base", "x"},
		"git::https://host/repo//base":                   {"https://host/repo", "base", ""},
	}
	for in, want := range cases {
		repo, sub, ref, err := splitRemote(in)
		if err != nil || [3]string{repo, sub, ref} != want {
			t.Errorf("splitRemote(%q) = %q %q %q %v, want %q", in, repo, sub, ref, err, want)
		}
	}
}

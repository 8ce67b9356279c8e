package cli

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"

	"github.com/strata-dev/strata/internal/gitops/gittest"
	"github.com/strata-dev/strata/internal/manager"
)

// TestLockdownFlags: file URLs and remote bases are off unless asked for.
func TestLockdownFlags(t *testing.T) {
	cases := map[string]struct {
		args        []string
		wantRoots   []string
		wantRemotes bool
	}{
		"defaults are locked down": {args: nil},
		"roots":                    {args: []string{"--allow-file-urls=/srv/git,/data/repos"}, wantRoots: []string{"/srv/git", "/data/repos"}},
		"--no-remote-bases alone":  {args: []string{"--no-remote-bases"}},
		"--no-remote-bases=true":   {args: []string{"--no-remote-bases=true"}},
		"--no-remote-bases=false":  {args: []string{"--no-remote-bases=false"}, wantRemotes: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			o := manager.DefaultOptions()
			cmd := &cobra.Command{Use: "x"}
			addSharedManagerFlags(cmd, &o)
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.wantRoots, o.AllowFileURLs); d != "" {
				t.Errorf("AllowFileURLs (-want +got):\n%s", d)
			}
			if o.RemoteBases != tc.wantRemotes {
				t.Errorf("RemoteBases = %v, want %v", o.RemoteBases, tc.wantRemotes)
			}
		})
	}
}

// TestUpSyncFileRoots: `strata up --sync PATH` allows exactly PATH.
func TestUpSyncFileRoots(t *testing.T) {
	repo := gittest.NewRepo(t, t.TempDir(), "app")
	repo.Commit("one", map[string]string{"a.yaml": "a: 1\n"})
	got, err := upSyncFileRoots(repo.Dir+"#apps", []string{"/srv/git"})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"/srv/git", repo.Dir}, got); d != "" {
		t.Errorf("roots (-want +got):\n%s", d)
	}
	if got, _ := upSyncFileRoots("https://example.com/app.git#apps", nil); len(got) != 0 {
		t.Errorf("a remote --sync URL allowed file roots %v", got)
	}
	if got, _ := upSyncFileRoots("", nil); len(got) != 0 {
		t.Errorf("no --sync allowed file roots %v", got)
	}
}

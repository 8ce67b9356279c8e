package inputs

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/gitops/apply"
	"github.com/strata-dev/strata/internal/kit/ownership"
)

func TestSyncInputs(t *testing.T) {
	type want struct {
		Source, User, FieldManager string
		Labels                     map[string]string
	}
	cases := map[string]struct {
		sync gitopsv1.Sync
		want want
	}{
		"same-namespace source, own identity": {
			gitopsv1.Sync{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "app"},
				Spec: gitopsv1.SyncSpec{SourceRef: gitopsv1.SourceReference{Name: "repo"}}},
			want{"team-a/repo", "", "strata/sync/team-a/app",
				map[string]string{ownership.LabelSyncName: "app", ownership.LabelSyncNamespace: "team-a"}},
		},
		"source elsewhere, service account": {
			gitopsv1.Sync{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "app"},
				Spec: gitopsv1.SyncSpec{SourceRef: gitopsv1.SourceReference{Name: "repo", Namespace: "platform"}, ServiceAccountName: "deployer"}},
			want{"platform/repo", "system:serviceaccount:team-a:deployer", "strata/sync/team-a/app",
				map[string]string{ownership.LabelSyncName: "app", ownership.LabelSyncNamespace: "team-a"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := &tc.sync
			o := &metav1.ObjectMeta{}
			Owner(s).SetMark(o)
			got := want{SourceRef(s).String(), ServiceAccountUser(s, ""), Owner(s).FieldManager(), o.Labels}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestImpersonating(t *testing.T) {
	base := &rest.Config{Host: "https://127.0.0.1:6443", BearerToken: "t"}
	c := Impersonating(base, "system:serviceaccount:a:b")
	if c.Impersonate.UserName != "system:serviceaccount:a:b" || c.Host != base.Host || base.Impersonate.UserName != "" {
		t.Errorf("impersonating config %+v from %+v", c.Impersonate, base.Impersonate)
	}
}

func TestInventory(t *testing.T) {
	inv := []gitopsv1.InventoryEntry{{APIVersion: "v1", Kind: "ConfigMap", Namespace: "a", Name: "x"}}
	want := []apply.Entry{{APIVersion: "v1", Kind: "ConfigMap", Namespace: "a", Name: "x"}}
	if d := cmp.Diff(want, Inventory(inv)); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestServiceAccountUserDefault(t *testing.T) {
	s := &gitopsv1.Sync{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "app"}}
	if got := ServiceAccountUser(s, "strata-tenant"); got != "system:serviceaccount:team-a:strata-tenant" {
		t.Errorf("without serviceAccountName: %q, want the default account in the Sync's namespace", got)
	}
	s.Spec.ServiceAccountName = "deployer"
	if got := ServiceAccountUser(s, "strata-tenant"); got != "system:serviceaccount:team-a:deployer" {
		t.Errorf("with serviceAccountName: %q, want it over the default", got)
	}
}

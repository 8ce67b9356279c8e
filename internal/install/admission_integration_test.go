package install_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/install"
	"github.com/strata-dev/strata/internal/scheme"
)

// warnings collects the warnings the API server sends a client.
type warnings struct {
	mu  sync.Mutex
	got []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, text)
}

func (w *warnings) take() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := strings.Join(w.got, "\n")
	w.got = nil
	return s
}

// as returns a client that impersonates user with groups (kubectl --as
// USER --as-group GROUP), and the warnings the API server sends it.
func as(t *testing.T, user string, groups ...string) (client.Client, *warnings) {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	w := &warnings{}
	cfg.WarningHandler = w
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}

// promotionRBAC applies the install's promotion roles and binds them in ns:
// the approver role to group release-managers, the overrider role to
// group release-leads.
func promotionRBAC(t *testing.T, ctx context.Context, ns string) {
	t.Helper()
	objs, err := install.Objects(install.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var roles []*unstructured.Unstructured
	for _, u := range objs {
		if u.GetKind() == "ClusterRole" && (u.GetName() == install.ApproverRole || u.GetName() == install.OverriderRole) {
			roles = append(roles, u)
		}
	}
	if len(roles) != 2 {
		t.Fatalf("the install has %d of the 2 promotion roles", len(roles))
	}
	if err := install.ApplyObjects(ctx, env.Config, roles); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for role, group := range map[string]string{install.ApproverRole: "release-managers", install.OverriderRole: "release-leads"} {
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: role},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: group}}}
		if err := env.Client.Create(ctx, rb); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
}

// TestApprovalPolicy makes Approvals as other users (impersonation) against
// the real API server with the policies the install ships: the approver
// field must be the requester, an Approval cannot be changed, and RBAC on
// approvals decides who may make one at all.
func TestApprovalPolicy(t *testing.T) {
	ctx := context.Background()
	const ns = "approval-policy"
	promotionRBAC(t, ctx, ns)
	alice, _ := as(t, "alice", "release-managers")
	approval := func(name, approver string, groups ...string) *deliveryv1.Approval {
		return &deliveryv1.Approval{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: deliveryv1.ApprovalSpec{Stage: "production", Revision: "0123abcd", Decision: deliveryv1.DecisionApprove,
				Approver: approver, Groups: groups}}
	}

	// Her own approval, with her group: accepted.
	own := approval("alice", "alice", "release-managers")
	if err := alice.Create(ctx, own); err != nil {
		t.Fatalf("alice's own approval was refused: %v", err)
	}

	cases := map[string]struct {
		c    client.Client
		obj  *deliveryv1.Approval
		want []string // in the error
	}{
		"approver names someone else": {c: alice, obj: approval("for-bob", "bob"),
			want: []string{install.ApprovalPolicyName, `it names "bob" but the request is made by "alice"`}},
		"a group the requester is not in": {c: alice, obj: approval("as-admin", "alice", "release-managers", "system:masters"),
			want: []string{install.ApprovalPolicyName, `"alice" is not in system:masters`}},
	}
	mallory, _ := as(t, "mallory", "developers")
	cases["no RBAC on approvals"] = struct {
		c    client.Client
		obj  *deliveryv1.Approval
		want []string
	}{c: mallory, obj: approval("mallory", "mallory"), want: []string{`cannot create resource "approvals"`, `"mallory"`}}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.c.Create(ctx, tc.obj)
			if !apierrors.IsForbidden(err) {
				t.Fatalf("create: %v, want Forbidden", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(tc.obj), &deliveryv1.Approval{}); !apierrors.IsNotFound(err) {
				t.Errorf("the refused Approval exists: %v", err)
			}
		})
	}

	t.Run("an Approval cannot be changed", func(t *testing.T) {
		// erin may update Approvals (RBAC), the cluster admin may do
		// anything: neither can change one. alice may not update at all.
		if err := env.Client.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "update-approvals"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"delivery.strata.dev"}, Resources: []string{"approvals"}, Verbs: []string{"get", "update", "patch"}}}}); err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "erin"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "update-approvals"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "erin"}}}); err != nil {
			t.Fatal(err)
		}
		erin, _ := as(t, "erin")
		for who, tc := range map[string]struct {
			c    client.Client
			want string
		}{
			"erin":          {erin, "immutable"},
			"cluster-admin": {env.Client, "immutable"},
			"alice":         {alice, `User "alice" cannot update resource "approvals"`},
		} {
			got := &deliveryv1.Approval{}
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(own), got); err != nil {
				t.Fatal(err)
			}
			got.Spec.Decision = deliveryv1.DecisionReject
			got.Spec.Approver = who
			if err := tc.c.Update(ctx, got); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("update by %s: %v, want a refusal naming %q", who, err, tc.want)
			}
		}
		got := &deliveryv1.Approval{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(own), got); err != nil {
			t.Fatal(err)
		}
		if got.Spec.Decision != deliveryv1.DecisionApprove || got.Spec.Approver != "alice" {
			t.Errorf("the Approval changed: %+v", got.Spec)
		}
	})
}

// TestPromotionPolicy: spec.requestedBy is pinned to the requester; asking
// to override windows needs it, and the API server warns a requester who
// lacks the override verb (the controller then ignores the override).
func TestPromotionPolicy(t *testing.T) {
	ctx := context.Background()
	const ns = "promotion-policy"
	promotionRBAC(t, ctx, ns)
	alice, aliceWarnings := as(t, "alice", "release-managers")
	carol, carolWarnings := as(t, "carol", "release-leads")
	promotion := func(name string, override bool, by *deliveryv1.RequestUser) *deliveryv1.Promotion {
		return &deliveryv1.Promotion{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: deliveryv1.PromotionSpec{Stage: "production", Revision: "0123abcd", OverrideWindows: override, RequestedBy: by}}
	}
	refused := map[string]struct {
		obj  *deliveryv1.Promotion
		want string
	}{
		"requestedBy names someone else": {promotion("for-bob", false, &deliveryv1.RequestUser{Username: "bob"}),
			`it names "bob" but the request is made by "alice"`},
		"requestedBy claims a group": {promotion("as-lead", true, &deliveryv1.RequestUser{Username: "alice", Groups: []string{"release-leads"}}),
			`"alice" is not in release-leads`},
		"override without requestedBy": {promotion("anonymous-override", true, nil),
			"spec.overrideWindows needs spec.requestedBy"},
	}
	for name, tc := range refused {
		t.Run(name, func(t *testing.T) {
			err := alice.Create(ctx, tc.obj)
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), install.PromotionPolicyName) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("create: %v, want Forbidden by %s naming %q", err, install.PromotionPolicyName, tc.want)
			}
		})
	}

	// Alice may promote but not override: accepted, with a warning. The
	// API server loads the Warn policy asynchronously, and ApprovalGate can
	// only wait for the Deny ones, so dry runs wait for it first (30 s).
	aliceOverride := func() *deliveryv1.Promotion {
		return promotion("alice-override", true, &deliveryv1.RequestUser{Username: "alice", Groups: []string{"release-managers"}})
	}
	const overrideWarning = `user "alice" may not override promotion windows in namespace ` + ns
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err := alice.Create(ctx, aliceOverride(), client.DryRunAll); err != nil {
			t.Fatalf("alice's override request was refused (dry run): %v", err)
		}
		if strings.Contains(aliceWarnings.take(), overrideWarning) {
			break
		}
	}
	if err := alice.Create(ctx, aliceOverride()); err != nil {
		t.Fatalf("alice's override request was refused: %v", err)
	}
	if w := aliceWarnings.take(); !strings.Contains(w, overrideWarning) {
		t.Errorf("no warning about the missing override right: %q", w)
	}
	// Carol holds the override verb: no warning.
	if err := carol.Create(ctx, promotion("carol-override", true, &deliveryv1.RequestUser{Username: "carol"})); err != nil {
		t.Fatalf("carol's override was refused: %v", err)
	}
	if w := carolWarnings.take(); w != "" {
		t.Errorf("carol holds the override verb, yet: %q", w)
	}
	// The manager's automatic promotions carry no requestedBy.
	if err := env.Client.Create(ctx, promotion("automatic", false, nil)); err != nil {
		t.Errorf("a promotion without requestedBy was refused: %v", err)
	}
}

// TestAdmissionPoliciesTypeCheck: the API server type-checks each policy
// against the CRDs' schemas; a field path that does not exist (an API
// rename) shows up as a warning in the policy's status.
func TestAdmissionPoliciesTypeCheck(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{install.ApprovalPolicyName, install.PromotionPolicyName, install.OverrideWarningPolicyName} {
		p := &admissionregistrationv1.ValidatingAdmissionPolicy{}
		deadline := time.Now().Add(30 * time.Second)
		for {
			if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, p); err != nil {
				t.Fatal(err)
			}
			if p.Status.ObservedGeneration == p.Generation || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if p.Status.ObservedGeneration != p.Generation {
			t.Fatalf("policy %s was not type-checked within 30s", name)
		}
		if p.Status.TypeChecking == nil {
			t.Errorf("policy %s has no type checking result", name)
			continue
		}
		for _, w := range p.Status.TypeChecking.ExpressionWarnings {
			t.Errorf("policy %s, %s: %s", name, w.FieldRef, w.Warning)
		}
	}
}

// TestInstallIncludesApprovalGate: what `strata install` applies (and
// `--export` prints) has the policies, their Deny/Warn bindings and the
// roles, and `--lockdown` or a subset of subsystems does not drop them.
func TestInstallIncludesApprovalGate(t *testing.T) {
	for name, o := range map[string]install.Options{
		"default":  {},
		"lockdown": {Lockdown: true, Subsystems: []string{"gitops"}},
	} {
		t.Run(name, func(t *testing.T) {
			objs, err := install.Objects(o)
			if err != nil {
				t.Fatal(err)
			}
			y, err := install.YAML(objs)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]*unstructured.Unstructured{}
			for _, u := range objs {
				got[u.GetKind()+"/"+u.GetName()] = u
			}
			for policy, action := range map[string]string{install.ApprovalPolicyName: "Deny", install.PromotionPolicyName: "Deny", install.OverrideWarningPolicyName: "Warn"} {
				if got["ValidatingAdmissionPolicy/"+policy] == nil {
					t.Errorf("no ValidatingAdmissionPolicy %s", policy)
				}
				b := got["ValidatingAdmissionPolicyBinding/"+policy]
				if b == nil {
					t.Errorf("no binding of %s", policy)
					continue
				}
				if actions, _, _ := unstructured.NestedStringSlice(b.Object, "spec", "validationActions"); len(actions) != 1 || actions[0] != action {
					t.Errorf("binding %s actions %v, want [%s]", policy, actions, action)
				}
				if !strings.Contains(string(y), "name: "+policy) {
					t.Errorf("the exported YAML lacks %s", policy)
				}
			}
			for _, role := range []string{install.ApproverRole, install.OverriderRole} {
				r := got["ClusterRole/"+role]
				if r == nil {
					t.Errorf("no ClusterRole %s", role)
					continue
				}
				for k := range r.GetLabels() {
					if strings.HasPrefix(k, "rbac.authorization.k8s.io/aggregate-to-") {
						t.Errorf("%s is aggregated (%s): approving must be granted on purpose", role, k)
					}
				}
			}
		})
	}
}

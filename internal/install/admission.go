package install

import (
	"context"
	"fmt"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// This file holds what makes promotion approvals trustworthy without a
// webhook: ValidatingAdmissionPolicies the API server itself evaluates
// (admissionregistration.k8s.io/v1, GA since Kubernetes 1.30), and the
// ClusterRoles that grant the rights to approve and to override a window.
//
// An Approval says who made it (spec.approver, spec.groups); the policy
// requires these to be the identity of the request that creates it, as
// the API server authenticated it, and refuses any change of an
// Approval's spec afterwards. A Promotion records who requested it
// (spec.requestedBy) the same way; one that asks to override a deny window
// (spec.overrideWindows) must record it, and the Stage's controller checks
// with a SubjectAccessReview that this user has the verb `override` on
// `promotions` (the API server warns at once when not). So the manager
// never trusts a name a client typed: the names it reads were checked by
// the API server when the object was written.

// Names of the admission policies and their bindings (one binding each,
// same name).
const (
	ApprovalPolicyName  = "strata-approvals.delivery.strata.dev"
	PromotionPolicyName = "strata-promotions.delivery.strata.dev"
	// OverrideWarningPolicyName warns (does not refuse) a user who asks to
	// override a window without the right to.
	OverrideWarningPolicyName = "strata-promotion-override-warning.delivery.strata.dev"
	// ApproverRole may read pipelines and create Approvals and Promotions;
	// bind it with a RoleBinding in the namespace of the stages a team
	// approves.
	ApproverRole = "strata-promotion-approver"
	// OverriderRole may also create Promotions that override a deny window.
	OverriderRole = "strata-promotion-overrider"
	// OverrideVerb is the verb on `promotions` that allows overriding a
	// deny window.
	OverrideVerb = "override"
)

const deliveryGroup = "delivery.strata.dev"

// The policies' CEL expressions.
const (
	onCreate = `request.operation != 'CREATE' || `
	// groupsHeld is true when every group in list is one of the requester's.
	groupsHeld = `.all(g, has(request.userInfo.groups) && g in request.userInfo.groups)`

	approverIsRequester = onCreate + `object.spec.approver == request.userInfo.username`
	approverGroupsHeld  = onCreate + `!has(object.spec.groups) || object.spec.groups` + groupsHeld
	approvalImmutable   = `request.operation != 'UPDATE' || object.spec == oldObject.spec`

	overrideRecordsRequester = `!has(object.spec.overrideWindows) || !object.spec.overrideWindows || has(object.spec.requestedBy)`
	requestedByIsRequester   = `!has(object.spec.requestedBy) || object.spec.requestedBy.username == request.userInfo.username`
	requestedByGroupsHeld    = `!has(object.spec.requestedBy) || !has(object.spec.requestedBy.groups) || object.spec.requestedBy.groups` + groupsHeld
	overridesWindows         = `has(object.spec.overrideWindows) && object.spec.overrideWindows`
	overrideAuthorized       = `authorizer.group('delivery.strata.dev').resource('promotions').namespace(object.metadata.namespace).check('override').allowed()`
)

// admissionObjects returns the policies and their bindings, typed, with
// their GroupVersionKind set.
func admissionObjects(meta func(name string, extra map[string]string) metav1.ObjectMeta) []runtime.Object {
	fail := admissionregistrationv1.Fail
	forbidden := ptr(metav1.StatusReasonForbidden)
	rules := func(resource string, ops ...admissionregistrationv1.OperationType) *admissionregistrationv1.MatchResources {
		return &admissionregistrationv1.MatchResources{
			ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: ops,
					Rule: admissionregistrationv1.Rule{
						APIGroups: []string{deliveryGroup}, APIVersions: []string{"*"}, Resources: []string{resource},
					},
				},
			}},
		}
	}
	create, update := admissionregistrationv1.Create, admissionregistrationv1.Update
	approvals := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: meta(ApprovalPolicyName, nil),
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy:    &fail,
			MatchConstraints: rules("approvals", create, update),
			Validations: []admissionregistrationv1.Validation{
				{
					Expression: approverIsRequester,
					MessageExpression: `'spec.approver must be the user who creates the Approval: it names "' + object.spec.approver + ` +
						`'" but the request is made by "' + request.userInfo.username + '"'`,
					Reason: forbidden,
				},
				{
					Expression: approverGroupsHeld,
					MessageExpression: `'spec.groups may only list groups of the user who creates the Approval; "' + request.userInfo.username + ` +
						`'" is not in ' + object.spec.groups.filter(g, !(has(request.userInfo.groups) && g in request.userInfo.groups)).join(', ')`,
					Reason: forbidden,
				},
				{
					Expression: approvalImmutable,
					Message:    "an Approval is immutable: delete it and create another",
					Reason:     forbidden,
				},
			},
		},
	}
	promotions := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: meta(PromotionPolicyName, nil),
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			// On create only: the spec is immutable (the CRD says so), and
			// the manager updates metadata of Promotions others created.
			MatchConstraints: rules("promotions", create),
			Validations: []admissionregistrationv1.Validation{
				{
					Expression: overrideRecordsRequester,
					Message:    "spec.overrideWindows needs spec.requestedBy: the user who asks for the override",
					Reason:     forbidden,
				},
				{
					Expression: requestedByIsRequester,
					MessageExpression: `'spec.requestedBy.username must be the user who creates the Promotion: it names "' + object.spec.requestedBy.username + ` +
						`'" but the request is made by "' + request.userInfo.username + '"'`,
					Reason: forbidden,
				},
				{
					Expression: requestedByGroupsHeld,
					MessageExpression: `'spec.requestedBy.groups may only list groups of the user who creates the Promotion; "' + request.userInfo.username + ` +
						`'" is not in ' + object.spec.requestedBy.groups.filter(g, !(has(request.userInfo.groups) && g in request.userInfo.groups)).join(', ')`,
					Reason: forbidden,
				},
			},
		},
	}
	warning := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: meta(OverrideWarningPolicyName, nil),
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy:    &fail,
			MatchConstraints: rules("promotions", create),
			MatchConditions:  []admissionregistrationv1.MatchCondition{{Name: "overrides-windows", Expression: overridesWindows}},
			Validations: []admissionregistrationv1.Validation{{
				Expression: overrideAuthorized,
				MessageExpression: `'user "' + request.userInfo.username + '" may not override promotion windows in namespace ' + object.metadata.namespace + ` +
					`' (it needs the verb override on promotions.delivery.strata.dev): the promotion will wait for the window'`,
			}},
		},
	}
	out := []runtime.Object{}
	for _, p := range []*admissionregistrationv1.ValidatingAdmissionPolicy{approvals, promotions, warning} {
		p.SetGroupVersionKind(admissionregistrationv1.SchemeGroupVersion.WithKind("ValidatingAdmissionPolicy"))
		action := admissionregistrationv1.Deny
		if p == warning {
			action = admissionregistrationv1.Warn
		}
		b := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
			ObjectMeta: meta(p.Name, nil),
			Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
				PolicyName:        p.Name,
				ValidationActions: []admissionregistrationv1.ValidationAction{action},
			},
		}
		b.SetGroupVersionKind(admissionregistrationv1.SchemeGroupVersion.WithKind("ValidatingAdmissionPolicyBinding"))
		out = append(out, p, b)
	}
	return out
}

// promotionRoles are the ClusterRoles of the approval gate. Neither is
// aggregated into view, edit or admin: approving a release and overriding
// a deny window are granted on purpose, with a RoleBinding in the
// namespace of the stages concerned.
func promotionRoles(meta func(name string, extra map[string]string) metav1.ObjectMeta) []runtime.Object {
	read := rbacv1.PolicyRule{APIGroups: strs(deliveryGroup), Resources: strs("pipelines", "stages", "promotions", "approvals", "analysisruns"), Verbs: readVerbs}
	roles := []*rbacv1.ClusterRole{
		{ObjectMeta: meta(ApproverRole, nil), Rules: []rbacv1.PolicyRule{
			read,
			// Approve or reject, and request a promotion by hand.
			rule(strs(deliveryGroup), strs("approvals", "promotions"), strs("create")),
		}},
		{ObjectMeta: meta(OverriderRole, nil), Rules: []rbacv1.PolicyRule{
			read,
			rule(strs(deliveryGroup), strs("promotions"), strs("create", OverrideVerb)),
		}},
	}
	out := []runtime.Object{}
	for _, r := range roles {
		r.SetGroupVersionKind(rbacv1.SchemeGroupVersion.WithKind("ClusterRole"))
		out = append(out, r)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// ApprovalGateObjects returns what makes the promotion approval gate:
// the admission policies with their bindings and the approver and
// overrider ClusterRoles, as `strata install` applies them.
func ApprovalGateObjects() ([]*unstructured.Unstructured, error) {
	meta := func(name string, _ map[string]string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Labels: map[string]string{PartOfLabel: partOf, "app.kubernetes.io/managed-by": "strata-install"}}
	}
	var out []*unstructured.Unstructured
	for _, obj := range append(admissionObjects(meta), promotionRoles(meta)...) {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return nil, fmt.Errorf("cannot convert %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, err)
		}
		u := &unstructured.Unstructured{Object: m}
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
		unstructured.RemoveNestedField(u.Object, "status")
		out = append(out, u)
	}
	return out, nil
}

// ApprovalGate applies the approval gate (ApprovalGateObjects), as
// `strata install` does, for clusters that get Strata's CRDs without the
// install: `strata up`, `strata manager --install-crds` and the test
// environments. The CRDs must be installed first. It returns once the API
// server enforces both Deny policies (it loads each policy and binding
// asynchronously, so one can be enforced a second before the other): a
// dry-run Approval and a dry-run Promotion naming another user are refused.
// The Warn policy is applied with them but cannot be probed this way (it
// warns only a requester without the override verb).
func ApprovalGate(ctx context.Context, cfg *rest.Config) error {
	objs, err := ApprovalGateObjects()
	if err != nil {
		return err
	}
	if err := ApplyObjects(ctx, cfg, objs); err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("cannot build client: %w", err)
	}
	for _, p := range gateProbes() {
		if err := waitEnforced(ctx, dyn, p); err != nil {
			return err
		}
	}
	return nil
}

// gateProbe is an object that only the policy named refuses.
type gateProbe struct {
	policy   string
	resource string
	obj      *unstructured.Unstructured
}

// notTheRequester is a user name no requester has.
const notTheRequester = "strata.dev:not-the-requester"

func gateProbes() []gateProbe {
	probe := func(kind string, spec map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": deliveryGroup + "/v1alpha1", "kind": kind,
			"metadata": map[string]any{"generateName": "strata-policy-probe-", "namespace": metav1.NamespaceDefault},
			"spec":     spec,
		}}
	}
	return []gateProbe{
		{policy: ApprovalPolicyName, resource: "approvals", obj: probe("Approval", map[string]any{
			"stage": "probe", "revision": "0000000", "decision": "Reject", "approver": notTheRequester})},
		{policy: PromotionPolicyName, resource: "promotions", obj: probe("Promotion", map[string]any{
			"stage": "probe", "revision": "0000000", "requestedBy": map[string]any{"username": notTheRequester}})},
	}
}

// waitEnforced creates p's object with dry run until the API server refuses
// it naming p's policy.
func waitEnforced(ctx context.Context, dyn dynamic.Interface, p gateProbe) error {
	gvr := schema.GroupVersionResource{Group: deliveryGroup, Version: "v1alpha1", Resource: p.resource}
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		_, last = dyn.Resource(gvr).Namespace(metav1.NamespaceDefault).Create(ctx, p.obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		switch {
		case last == nil:
			return false, nil // not enforced yet
		case strings.Contains(last.Error(), p.policy):
			return true, nil
		case apierrors.IsForbidden(last) || apierrors.IsNotFound(last):
			// No right to create the kind, or no default namespace: the
			// policy cannot be probed; applying it is all we can do.
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("the API server does not enforce %s (is ValidatingAdmissionPolicy enabled? last answer: %v): %w", p.policy, last, err)
	}
	return nil
}

package cli

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/strata-dev/strata/internal/install"
)

// approvalGate checks that the admission policies that pin an Approval's
// approver (and a Promotion's requester) to the request's user are
// installed and bound: without them the names on Approvals are not checked.
func (c *checker) approvalGate(ctx context.Context, k *kube) {
	gv := schema.GroupVersion{Group: "admissionregistration.k8s.io", Version: "v1"}
	missing := 0
	for _, name := range []string{install.ApprovalPolicyName, install.PromotionPolicyName, install.OverrideWarningPolicyName} {
		for _, res := range []string{"validatingadmissionpolicies", "validatingadmissionpolicybindings"} {
			_, err := k.dyn.Resource(gv.WithResource(res)).Get(ctx, name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				missing++
				c.fail("approval gate: %s %s is not installed (run strata install): Approvals could name anyone", res, name)
			case err != nil:
				missing++
				c.fail("approval gate: cannot read %s %s: %v", res, name, err)
			}
		}
	}
	if missing == 0 {
		c.ok("approval gate: 3 admission policies installed and bound")
	}
}

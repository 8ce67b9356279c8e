package controller

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/kit/patch"
)

// markPaused records that reconciliation is paused (Synced=False, reason
// ReconciliationPaused), writing status only when that is news.
func markPaused(ctx context.Context, c client.Client, u *unstructured.Unstructured) error {
	conds := readConds(u)
	if cur := conditions.Get(conds, conditions.Synced); cur != nil && cur.Reason == conditions.ReasonReconciliationPaused {
		return nil
	}
	h := patch.NewHelper(c, u)
	conditions.Set(conds, conditions.Synced, metav1.ConditionFalse, conditions.ReasonReconciliationPaused,
		"reconciliation is paused by the annotation "+AnnotationPaused+`: "true"`)
	conds.write()
	if err := h.Status(ctx, u); err != nil {
		return fmt.Errorf("cannot record that reconciliation is paused: %w", err)
	}
	return nil
}

// condObj adapts the conditions of an unstructured object to the
// conditions helpers.
type condObj struct {
	u     *unstructured.Unstructured
	conds []metav1.Condition
}

func readConds(u *unstructured.Unstructured) *condObj {
	c := &condObj{u: u}
	raw, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		var cond metav1.Condition
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &cond); err == nil {
			if cond.LastTransitionTime.IsZero() {
				// A condition from the claim kind's default status
				// (xrd.newClaimStatus) has held since the claim was made.
				cond.LastTransitionTime = u.GetCreationTimestamp()
			}
			c.conds = append(c.conds, cond)
		}
	}
	return c
}

func (c *condObj) GetGeneration() int64               { return c.u.GetGeneration() }
func (c *condObj) GetConditions() *[]metav1.Condition { return &c.conds }

// write stores the conditions back into the object.
func (c *condObj) write() {
	out := make([]any, 0, len(c.conds))
	for i := range c.conds {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&c.conds[i])
		if err == nil {
			out = append(out, m)
		}
	}
	_ = unstructured.SetNestedSlice(c.u.Object, out, "status", "conditions")
}

package nop

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/managed"
	nopv1 "github.com/strata-dev/strata/providers/nop/apis/nop/v1alpha1"
)

// ConnectionDetails are the fixed details every NopResource publishes.
var ConnectionDetails = managed.ConnectionDetails{
	managed.ConnectionEndpoint: []byte("nop.strata.dev"),
	managed.ConnectionPort:     []byte("0"),
	managed.ConnectionUsername: []byte("nop"),
	managed.ConnectionPassword: []byte("nop"),
}

// Setup registers the NopResource controller.
func Setup(mgr ctrl.Manager, o managed.Options) error {
	return managed.Setup(mgr, o, managed.Kind{
		New: func() managed.Managed { return &nopv1.NopResource{} },
		Connector: managed.ConnectorFunc(func(context.Context, managed.Managed) (managed.External, error) {
			return external{}, nil
		}),
	})
}

// external is the nop "client". A NopResource's external resource exists
// from the moment the runtime recorded its create intent.
type external struct{}

func (external) Observe(_ context.Context, mg managed.Managed) (managed.Observation, error) {
	r := mg.(*nopv1.NopResource)
	if r.GetAnnotations()[managed.AnnotationCreatePending] == "" {
		return managed.Observation{}, nil
	}
	r.Status.AtProvider.Fields = r.Spec.ForProvider.Fields
	return managed.Observation{
		Exists:            true,
		UpToDate:          true,
		NotReady:          applyConditionsAfter(r, time.Now()),
		ConnectionDetails: ConnectionDetails,
	}, nil
}

func (external) Create(context.Context, managed.Managed) (managed.Creation, error) {
	return managed.Creation{ConnectionDetails: ConnectionDetails}, nil
}

func (external) Update(context.Context, managed.Managed) (managed.Update, error) {
	return managed.Update{}, nil
}

func (external) Delete(_ context.Context, mg managed.Managed) error {
	a := mg.GetAnnotations()
	delete(a, managed.AnnotationCreatePending)
	mg.SetAnnotations(a)
	return nil
}

// applyConditionsAfter sets the non-Ready conditions whose time has passed
// and returns why the resource is not Ready yet ("" when it is).
func applyConditionsAfter(r *nopv1.NopResource, now time.Time) string {
	created := r.CreationTimestamp.Time
	notReady := ""
	readyDecided := false
	for _, c := range r.Spec.ForProvider.ConditionAfter {
		due := !now.Before(created.Add(c.Time.Duration))
		if c.ConditionType == conditions.Ready {
			if due {
				readyDecided = true
				notReady = ""
				if c.ConditionStatus != metav1.ConditionTrue {
					notReady = fmt.Sprintf("conditionAfter sets Ready=%s after %s", c.ConditionStatus, c.Time.Duration)
				}
			} else if !readyDecided {
				notReady = fmt.Sprintf("conditionAfter makes it Ready after %s", c.Time.Duration)
			}
			continue
		}
		if due {
			reason := c.ConditionReason
			if reason == "" {
				reason = "Nop"
			}
			conditions.Set(r, c.ConditionType, c.ConditionStatus, reason, "set by conditionAfter")
		}
	}
	return notReady
}

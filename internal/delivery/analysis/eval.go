package analysis

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/google/cel-go/cel"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
	"github.com/strata-dev/strata/internal/kit/celenv"
)

// MaxMeasurements is how many measurements a metric keeps in status; older
// ones are dropped, the counters keep counting.
const MaxMeasurements = 100

// Evaluator compiles and evaluates the CEL of metrics: conditions over
// `result`, and kubernetes conditions over `objects`.
type Evaluator struct {
	result  *celenv.Env
	objects *celenv.Env
}

// NewEvaluator builds the two environments from the kit's CEL environment.
func NewEvaluator() (*Evaluator, error) {
	r, err := celenv.New(celenv.Options{Variables: []celenv.Variable{{Name: "result", Type: cel.DynType}}})
	if err != nil {
		return nil, err
	}
	o, err := celenv.New(celenv.Options{Variables: []celenv.Variable{{Name: "objects", Type: cel.ListType(cel.DynType)}}})
	if err != nil {
		return nil, err
	}
	return &Evaluator{result: r, objects: o}, nil
}

// Check compiles every expression of m, naming the metric and field of the
// first that does not compile.
func (e *Evaluator) Check(m deliveryv1.Metric) error {
	for field, expr := range map[string]string{"successCondition": m.SuccessCondition, "failureCondition": m.FailureCondition} {
		if expr == "" {
			continue
		}
		if _, err := e.result.Compile(expr); err != nil {
			return fmt.Errorf("metric %s: %s %q does not compile: %w", m.Name, field, expr, err)
		}
	}
	if k := m.Provider.Kubernetes; k != nil {
		if _, err := e.objects.Compile(k.Condition); err != nil {
			return fmt.Errorf("metric %s: kubernetes condition %q does not compile: %w", m.Name, k.Condition, err)
		}
	}
	return nil
}

// Objects evaluates a kubernetes condition over the objects read.
func (e *Evaluator) Objects(expr string, objects []any) (any, error) {
	p, err := e.objects.Compile(expr)
	if err != nil {
		return nil, err
	}
	return p.Eval(map[string]any{"objects": objects})
}

// Verdict is the judgement of one measured value.
type Verdict struct {
	Phase   string
	Message string
}

// Evaluate judges a value by m's noData policy and conditions. A condition
// that cannot be evaluated against the value is an Error naming it.
func (e *Evaluator) Evaluate(m deliveryv1.Metric, value any, noData bool) Verdict {
	if noData {
		switch m.NoData {
		case deliveryv1.NoDataPass:
			return Verdict{Phase: deliveryv1.PhaseSuccessful, Message: "no data (noData: Pass)"}
		case deliveryv1.NoDataInconclusive:
			return Verdict{Phase: deliveryv1.PhaseInconclusive, Message: "no data (noData: Inconclusive)"}
		default:
			return Verdict{Phase: deliveryv1.PhaseFailed, Message: "no data (noData: Fail)"}
		}
	}
	shown := FormatValue(value)
	eval := func(field, expr string) (bool, *Verdict) {
		p, err := e.result.Compile(expr)
		if err == nil {
			var ok bool
			ok, err = p.EvalBool(map[string]any{"result": value})
			if err == nil {
				return ok, nil
			}
		}
		return false, &Verdict{Phase: deliveryv1.PhaseError, Message: fmt.Sprintf("%s %q cannot be evaluated for %s: %v", field, expr, shown, err)}
	}
	if m.FailureCondition != "" {
		bad, v := eval("failureCondition", m.FailureCondition)
		if v != nil {
			return *v
		}
		if bad {
			return Verdict{Phase: deliveryv1.PhaseFailed, Message: fmt.Sprintf("value %s meets failureCondition %q", shown, m.FailureCondition)}
		}
	}
	if m.SuccessCondition != "" {
		good, v := eval("successCondition", m.SuccessCondition)
		if v != nil {
			return *v
		}
		switch {
		case good:
			return Verdict{Phase: deliveryv1.PhaseSuccessful}
		case m.FailureCondition != "":
			return Verdict{Phase: deliveryv1.PhaseInconclusive, Message: fmt.Sprintf("value %s meets neither successCondition %q nor failureCondition %q", shown, m.SuccessCondition, m.FailureCondition)}
		default:
			return Verdict{Phase: deliveryv1.PhaseFailed, Message: fmt.Sprintf("value %s does not meet successCondition %q", shown, m.SuccessCondition)}
		}
	}
	if b, ok := value.(bool); ok && m.FailureCondition == "" && !b {
		return Verdict{Phase: deliveryv1.PhaseFailed, Message: "result is false"}
	}
	return Verdict{Phase: deliveryv1.PhaseSuccessful}
}

// FormatValue renders a value as JSON for status and messages; NaN and
// infinities (which JSON lacks) are written as Prometheus writes them.
func FormatValue(v any) string {
	if v == nil {
		return ""
	}
	if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return fmt.Sprint(f)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// Limits are a metric's limits with defaults applied. A negative
// FailureLimit or InconclusiveLimit tolerates any number; Count 0 means no
// count (measure until a limit decides).
type Limits struct {
	Count, FailureLimit, InconclusiveLimit, ConsecutiveErrorLimit, ConsecutiveSuccessLimit int32
}

// LimitsOf applies the defaults to m: one measurement when neither count
// nor interval is set, failureLimit 0, inconclusiveLimit 0,
// consecutiveErrorLimit 4.
func LimitsOf(m deliveryv1.Metric) Limits {
	l := Limits{ConsecutiveErrorLimit: 4}
	switch {
	case m.Count != nil:
		l.Count = *m.Count
	case m.Interval == nil || m.Interval.Duration <= 0:
		l.Count = 1
	}
	if m.FailureLimit != nil {
		l.FailureLimit = *m.FailureLimit
	}
	if m.InconclusiveLimit != nil {
		l.InconclusiveLimit = *m.InconclusiveLimit
	}
	if m.ConsecutiveErrorLimit != nil {
		l.ConsecutiveErrorLimit = *m.ConsecutiveErrorLimit
	}
	if m.ConsecutiveSuccessLimit != nil {
		l.ConsecutiveSuccessLimit = *m.ConsecutiveSuccessLimit
	}
	return l
}

// Record adds a finished measurement to r: it updates the counters and keeps
// at most MaxMeasurements. A measurement still in flight (Running) is
// replaced by its finished form.
func Record(r *deliveryv1.MetricResult, m deliveryv1.Measurement) {
	if n := len(r.Measurements); n > 0 && r.Measurements[n-1].Phase == deliveryv1.PhaseRunning {
		r.Measurements = r.Measurements[:n-1]
	}
	r.Measurements = append(r.Measurements, m)
	if len(r.Measurements) > MaxMeasurements {
		r.Measurements = r.Measurements[len(r.Measurements)-MaxMeasurements:]
	}
	if m.Phase == deliveryv1.PhaseRunning {
		return
	}
	r.Count++
	switch m.Phase {
	case deliveryv1.PhaseSuccessful:
		r.Successful++
		r.ConsecutiveSuccess++
		r.ConsecutiveError = 0
	case deliveryv1.PhaseFailed:
		r.Failed++
		r.ConsecutiveSuccess, r.ConsecutiveError = 0, 0
	case deliveryv1.PhaseInconclusive:
		r.Inconclusive++
		r.ConsecutiveSuccess, r.ConsecutiveError = 0, 0
	case deliveryv1.PhaseError:
		r.Error++
		r.ConsecutiveError++
		r.ConsecutiveSuccess = 0
	}
}

// Assess decides a metric's phase from its counters: Failed when the
// failures exceed failureLimit, Inconclusive when the inconclusive
// measurements exceed inconclusiveLimit, Error when the consecutive errors
// exceed consecutiveErrorLimit, Successful after consecutiveSuccessLimit
// successes in a row or after count measurements (Failed when count is
// reached without the consecutive successes asked for), else Running.
func Assess(l Limits, r *deliveryv1.MetricResult) Verdict {
	last := ""
	if n := len(r.Measurements); n > 0 {
		last = r.Measurements[n-1].Message
		if v := r.Measurements[n-1].Value; v != "" && last == "" {
			last = "value " + v
		}
	}
	with := func(s string) string {
		if last == "" {
			return s
		}
		return s + ": " + last
	}
	switch {
	case l.FailureLimit >= 0 && r.Failed > l.FailureLimit:
		return Verdict{deliveryv1.PhaseFailed, with(fmt.Sprintf("%d failed measurements exceed failureLimit %d", r.Failed, l.FailureLimit))}
	case l.InconclusiveLimit >= 0 && r.Inconclusive > l.InconclusiveLimit:
		return Verdict{deliveryv1.PhaseInconclusive, with(fmt.Sprintf("%d inconclusive measurements exceed inconclusiveLimit %d", r.Inconclusive, l.InconclusiveLimit))}
	case r.ConsecutiveError > l.ConsecutiveErrorLimit:
		return Verdict{deliveryv1.PhaseError, with(fmt.Sprintf("%d consecutive errors exceed consecutiveErrorLimit %d", r.ConsecutiveError, l.ConsecutiveErrorLimit))}
	case l.ConsecutiveSuccessLimit > 0 && r.ConsecutiveSuccess >= l.ConsecutiveSuccessLimit:
		return Verdict{deliveryv1.PhaseSuccessful, fmt.Sprintf("%d consecutive successful measurements", r.ConsecutiveSuccess)}
	case l.Count > 0 && r.Count >= l.Count && r.Successful == 0 && r.Error > 0:
		return Verdict{deliveryv1.PhaseError, with(fmt.Sprintf("%d measurements taken, none successful, %d errors", r.Count, r.Error))}
	case l.Count > 0 && r.Count >= l.Count && l.ConsecutiveSuccessLimit > 0:
		return Verdict{deliveryv1.PhaseFailed, fmt.Sprintf("%d measurements taken without %d consecutive successes", r.Count, l.ConsecutiveSuccessLimit)}
	case l.Count > 0 && r.Count >= l.Count:
		return Verdict{deliveryv1.PhaseSuccessful, fmt.Sprintf("%d of %d measurements successful", r.Successful, r.Count)}
	}
	return Verdict{Phase: deliveryv1.PhaseRunning}
}

// NextAt is when the next measurement of m is due: startedAt plus
// initialDelay for the first, the end of the last plus interval after.
func NextAt(m deliveryv1.Metric, r *deliveryv1.MetricResult, startedAt time.Time) time.Time {
	n := len(r.Measurements)
	if n == 0 {
		if m.InitialDelay != nil {
			return startedAt.Add(m.InitialDelay.Duration)
		}
		return startedAt
	}
	last := r.Measurements[n-1]
	end := last.StartedAt.Time
	if last.FinishedAt != nil {
		end = last.FinishedAt.Time
	}
	if m.Interval != nil {
		return end.Add(m.Interval.Duration)
	}
	return end
}

// Worst combines metric phases into the run's: Failed, then Error, then
// Inconclusive win over Running, which wins over Successful.
func Worst(phases ...string) string {
	rank := map[string]int{deliveryv1.PhaseSuccessful: 0, deliveryv1.PhaseRunning: 1, deliveryv1.PhaseInconclusive: 2, deliveryv1.PhaseError: 3, deliveryv1.PhaseFailed: 4}
	out := deliveryv1.PhaseSuccessful
	for _, p := range phases {
		if rank[p] > rank[out] {
			out = p
		}
	}
	return out
}

// Now is a measurement timestamp. Status keeps whole seconds, so it is
// rounded up: the next measurement, due an interval after it, is never
// taken early.
func Now() metav1.Time {
	t := time.Now()
	if r := t.Truncate(time.Second); !r.Equal(t) {
		t = r.Add(time.Second)
	}
	return metav1.NewTime(t)
}

package render

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"github.com/strata-dev/strata/apis/apiextensions/v1alpha1"
	"github.com/strata-dev/strata/internal/composition/cel"
	"github.com/strata-dev/strata/internal/kit/health"
)

// Labels set on every composed resource.
const (
	LabelComposite      = "strata.dev/composite"
	LabelClaimName      = v1alpha1.LabelClaimName
	LabelClaimNamespace = v1alpha1.LabelClaimNamespace
	LabelResourceName   = "strata.dev/resource-name"
)

// Input is what a render needs.
type Input struct {
	// XR is the composite resource.
	XR *unstructured.Unstructured
	// Composition is the spec to render (usually from a CompositionRevision).
	Composition *v1alpha1.CompositionSpec
	// Observed are the composed resources that exist, by resource id (the
	// strata.dev/resource-name label: the resource name, or name-index for
	// forEach resources).
	Observed map[string]*unstructured.Unstructured
	// Environment is the merged data of the selected EnvironmentConfigs.
	Environment map[string]any
	// DefaultNamespace is set on templates without a namespace (the claim's
	// namespace); the caller removes it again for cluster-scoped kinds.
	DefaultNamespace string
	// Plan, when set, is reused instead of compiling the Composition again.
	Plan *Plan
	// Namespaced says whether a kind is namespaced. When set, cluster-scoped
	// objects lose the default namespace and, for an XR bound to a claim
	// (label strata.dev/claim-namespace), namespaced objects outside the
	// claim's namespace and the resource's allowedNamespaces are Refused.
	// When nil (a render without a cluster), no kind is known to be either
	// and neither happens.
	Namespaced func(schema.GroupVersionKind) bool
}

// State says what to do with a composed resource.
type State string

// States of a composed resource.
const (
	// Apply: the desired object is to be applied.
	Apply State = "Apply"
	// Blocked: a dependency is not ready (or data it reads is missing); an
	// existing object is left as it is.
	Blocked State = "Blocked"
	// Excluded: includeWhen is false; an existing object is to be deleted.
	Excluded State = "Excluded"
	// Refused: the object was rendered into a namespace a claim may not
	// compose into; nothing is applied and an existing object is left as it
	// is. Reason says why, Desired holds the rendered object.
	Refused State = "Refused"
)

// ReasonNamespaceNotAllowed is the Synced condition reason of a composite
// whose claim would compose a namespaced object outside its namespace and
// the resource's allowedNamespaces.
const ReasonNamespaceNotAllowed = "NamespaceNotAllowed"

// Resource is one composed resource of the render.
type Resource struct {
	// Name is the Composition resource name.
	Name string
	// ID is the resource id (Name, or Name-index for forEach).
	ID string
	// State says what to do.
	State State
	// Desired is the object to apply (State Apply).
	Desired *unstructured.Unstructured
	// Ready says whether the observed object is ready.
	Ready bool
	// Reason explains a resource that is not ready: a condition reason,
	// "not created yet", or what it waits for.
	Reason string
	// Failed, when set, is why kit/health calls the observed object Failed
	// (Stalled=True, a Deployment past its progress deadline): it will not
	// become ready by itself.
	Failed string
}

// Output is the result of a render.
type Output struct {
	// Resources in creation order.
	Resources []Resource
	// Order of resource names (creation order); deletion runs in reverse.
	Order []string
	// Status holds the XR status fields computed from spec.status.
	Status map[string]any
	// ConnectionDetails are the keys for the connection Secret.
	ConnectionDetails map[string][]byte
	// Ready is true when every included resource is ready.
	Ready bool
	// Waiting lists the resources not ready, e.g. "db (Creating)".
	Waiting []string
	// Failed lists the resources that failed (Resource.Failed), e.g.
	// `db (ResourceConflict): external resource "orders" already exists...`.
	Failed []string
	// failedWaiting are the entries of Waiting that are in Failed too.
	failedWaiting map[string]bool
}

// WaitingMessage is the Ready condition message of a composite that waits.
func (o *Output) WaitingMessage() string {
	return "waiting for: " + strings.Join(o.Waiting, ", ")
}

// FailedMessage is the Ready and Stalled condition message of a composite
// with failed resources: each failure, then the other resources it waits for.
func (o *Output) FailedMessage() string {
	msg := "failed: " + strings.Join(o.Failed, "; ")
	var rest []string
	for _, w := range o.Waiting {
		if !o.failedWaiting[w] {
			rest = append(rest, w)
		}
	}
	if len(rest) > 0 {
		msg += "; waiting for: " + strings.Join(rest, ", ")
	}
	return msg
}

// FieldError is an error in one field of one resource, naming the expression.
type FieldError struct {
	Resource string
	Field    string
	Expr     string
	Err      error
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Resource != "" {
		fmt.Fprintf(&b, "resource %q ", e.Resource)
	}
	fmt.Fprintf(&b, "field %s", e.Field)
	if e.Expr != "" {
		fmt.Fprintf(&b, ": expression %q", e.Expr)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *FieldError) Unwrap() error { return e.Err }

// Render computes the desired composed resources.
func Render(in Input) (*Output, error) {
	plan := in.Plan
	if plan == nil {
		var err error
		if plan, err = NewPlan(in.Composition, nil); err != nil {
			return nil, err
		}
	}
	vars := map[string]any{
		cel.VarXR:          in.XR.Object,
		cel.VarEnvironment: orEmpty(in.Environment),
	}
	for _, t := range plan.templates {
		if t.ForEach != nil {
			var list []any
			for _, id := range sortedIDs(in.Observed, t.Name) {
				list = append(list, in.Observed[id].Object)
			}
			if list != nil {
				vars[t.Name] = list
			}
			continue
		}
		if o, ok := in.Observed[t.Name]; ok {
			vars[t.Name] = o.Object
		}
	}
	out := &Output{Order: plan.Order, Ready: true}
	ready := map[string]bool{}
	for _, name := range plan.Order {
		t := plan.templates[name]
		var waitFor []string
		for _, d := range plan.Graph[name] {
			if !ready[d] {
				waitFor = append(waitFor, d)
			}
		}
		rs, err := renderResource(in, plan, t, vars, waitFor)
		if err != nil {
			return nil, err
		}
		allReady := true
		for _, r := range rs {
			if r.State == Excluded {
				continue
			}
			if !r.Ready {
				allReady = false
				out.Ready = false
				w := fmt.Sprintf("%s (%s)", r.ID, r.Reason)
				out.Waiting = append(out.Waiting, w)
				if r.Failed != "" {
					f := w + ": " + r.Failed
					if r.Reason == failedReason(r.Failed) {
						f = w // the reason says it already
					}
					out.Failed = append(out.Failed, f)
					if out.failedWaiting == nil {
						out.failedWaiting = map[string]bool{}
					}
					out.failedWaiting[w] = true
				}
			}
		}
		ready[name] = allReady
		out.Resources = append(out.Resources, rs...)
	}
	if in.Composition.Status != nil && len(in.Composition.Status.Raw) > 0 {
		var st any
		if err := utiljson.Unmarshal(in.Composition.Status.Raw, &st); err != nil {
			return nil, fmt.Errorf("cannot decode spec.status: %w", err)
		}
		v, err := evalTree(plan.env, st, vars, "status", true)
		if err != nil {
			return nil, err
		}
		if m, ok := v.(map[string]any); ok {
			out.Status = m
		}
	}
	for _, k := range sortedKeys(in.Composition.ConnectionDetails) {
		v, err := plan.env.EvalString(in.Composition.ConnectionDetails[k], vars)
		if errors.Is(err, cel.ErrMissingData) {
			continue
		}
		if err != nil {
			return nil, &FieldError{Field: "connectionDetails." + k, Expr: in.Composition.ConnectionDetails[k], Err: err}
		}
		if v == nil {
			continue
		}
		if out.ConnectionDetails == nil {
			out.ConnectionDetails = map[string][]byte{}
		}
		out.ConnectionDetails[k] = []byte(cel.Stringify(v))
	}
	return out, nil
}

func renderResource(in Input, plan *Plan, t *v1alpha1.ComposedTemplate, vars map[string]any, waitFor []string) ([]Resource, error) {
	blocked := func(id, reason string) Resource {
		return Resource{Name: t.Name, ID: id, State: Blocked, Reason: reason}
	}
	if len(waitFor) > 0 {
		reason := "waiting for " + strings.Join(waitFor, ", ")
		if t.ForEach != nil {
			ids := sortedIDs(in.Observed, t.Name)
			if len(ids) == 0 {
				return []Resource{blocked(t.Name, reason)}, nil
			}
			var out []Resource
			for _, id := range ids {
				r := blocked(id, reason)
				out = append(out, r)
			}
			return out, nil
		}
		return []Resource{blocked(t.Name, reason)}, nil
	}
	for i, expr := range t.IncludeWhen {
		ok, err := evalBool(plan.env, expr, vars)
		if errors.Is(err, cel.ErrMissingData) {
			return []Resource{blocked(t.Name, "waiting for data")}, nil
		}
		if err != nil {
			return nil, &FieldError{Resource: t.Name, Field: fmt.Sprintf("includeWhen[%d]", i), Expr: expr, Err: err}
		}
		if !ok {
			var out []Resource
			ids := sortedIDs(in.Observed, t.Name)
			if t.ForEach == nil || len(ids) == 0 {
				ids = []string{t.Name}
			}
			for _, id := range ids {
				out = append(out, Resource{Name: t.Name, ID: id, State: Excluded, Ready: true})
			}
			return out, nil
		}
	}
	// The decoded template is shared; renderOne works on a deep copy.
	tmpl := plan.decoded[t.Name]
	if t.ForEach == nil {
		r, err := renderOne(in, plan, t, t.Name, tmpl, vars)
		if err != nil {
			return nil, err
		}
		return []Resource{r}, nil
	}
	items, err := plan.env.EvalString(t.ForEach.In, vars)
	if errors.Is(err, cel.ErrMissingData) {
		return []Resource{blocked(t.Name, "waiting for data")}, nil
	}
	if err != nil {
		return nil, &FieldError{Resource: t.Name, Field: "forEach.in", Expr: t.ForEach.In, Err: err}
	}
	list, ok := items.([]any)
	if !ok && items != nil {
		return nil, &FieldError{Resource: t.Name, Field: "forEach.in", Expr: t.ForEach.In, Err: fmt.Errorf("must give a list, got %T", items)}
	}
	variable := forEachVar(t)
	var out []Resource
	for i, el := range list {
		v := make(map[string]any, len(vars)+2)
		for k, x := range vars {
			v[k] = x
		}
		v[variable] = el
		v[variable+"Index"] = int64(i)
		r, err := renderOne(in, plan, t, t.Name+"-"+strconv.Itoa(i), tmpl, v)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	// Elements that went away are excluded, so their objects are deleted.
	for _, id := range sortedIDs(in.Observed, t.Name) {
		idx, _ := strconv.Atoi(strings.TrimPrefix(id, t.Name+"-"))
		if idx >= len(list) {
			out = append(out, Resource{Name: t.Name, ID: id, State: Excluded, Ready: true})
		}
	}
	return out, nil
}

func renderOne(in Input, plan *Plan, t *v1alpha1.ComposedTemplate, id string, tmpl any, vars map[string]any) (Resource, error) {
	v, err := evalTree(plan.env, deepCopy(tmpl), vars, "template", false)
	if errors.Is(err, cel.ErrMissingData) {
		return Resource{Name: t.Name, ID: id, State: Blocked, Reason: "waiting for data: " + missing(err)}, nil
	}
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			fe.Resource = t.Name
		}
		return Resource{}, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return Resource{}, &FieldError{Resource: t.Name, Field: "template", Err: errors.New("must be an object")}
	}
	u := &unstructured.Unstructured{Object: obj}
	if u.GetAPIVersion() == "" || u.GetKind() == "" {
		return Resource{}, &FieldError{Resource: t.Name, Field: "template", Err: errors.New("apiVersion and kind are required")}
	}
	if u.GetName() == "" {
		u.SetName(in.XR.GetName() + "-" + strings.ToLower(id))
	}
	if u.GetNamespace() == "" && in.DefaultNamespace != "" {
		u.SetNamespace(in.DefaultNamespace)
	}
	claimNS := in.XR.GetLabels()[LabelClaimNamespace]
	if in.Namespaced != nil {
		if !in.Namespaced(u.GroupVersionKind()) {
			u.SetNamespace("")
		} else if claimNS != "" && !NamespaceAllowed(u.GetNamespace(), claimNS, t.AllowedNamespaces) {
			return Resource{Name: t.Name, ID: id, State: Refused, Desired: u,
				Reason: fmt.Sprintf("namespace %s not allowed", u.GetNamespace())}, nil
		}
	}
	labels := u.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	xl := in.XR.GetLabels()
	labels[LabelComposite] = in.XR.GetName()
	if xl[LabelClaimName] != "" {
		labels[LabelClaimName] = xl[LabelClaimName]
		labels[LabelClaimNamespace] = xl[LabelClaimNamespace]
	}
	labels[LabelResourceName] = id
	u.SetLabels(labels)

	r := Resource{Name: t.Name, ID: id, State: Apply, Desired: u}
	observed, ok := in.Observed[id]
	if !ok {
		r.Reason = "not created yet"
		return r, nil
	}
	r.Ready, r.Reason, r.Failed, err = readiness(plan, t, id, observed, vars)
	return r, err
}

// NamespaceAllowed reports whether an object composed for a claim in
// claimNS may be in namespace ns: ns is the claim's namespace or matches one
// of allowed, names or patterns where '*' matches any run of characters and
// '?' one character.
func NamespaceAllowed(ns, claimNS string, allowed []string) bool {
	if ns == claimNS {
		return true
	}
	for _, a := range allowed {
		if globMatch(a, ns) {
			return true
		}
	}
	return false
}

// globMatch matches name against a pattern of literal characters, '*' (any
// run) and '?' (one character). Unlike path.Match it has no character
// classes or escapes, so no pattern is malformed.
func globMatch(pattern, name string) bool {
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == name[n]):
			p++
			n++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case star >= 0:
			p = star + 1
			mark++
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// readiness evaluates readyWhen (with the resource itself bound to its
// name), or the default: the object's health (kit/health: kstatus, and
// Ready for composites and claims) is Current. It says why a resource is not
// ready and, when kit/health calls it Failed, what failed.
func readiness(plan *Plan, t *v1alpha1.ComposedTemplate, id string, observed *unstructured.Unstructured, vars map[string]any) (ready bool, reason, failed string, err error) {
	if len(t.ReadyWhen) > 0 {
		v := vars
		if t.ForEach != nil {
			v = make(map[string]any, len(vars)+1)
			for k, x := range vars {
				v[k] = x
			}
			v[t.Name] = observed.Object
		}
		for i, expr := range t.ReadyWhen {
			ok, err := evalBool(plan.env, expr, v)
			if errors.Is(err, cel.ErrMissingData) {
				return false, "not ready", "", nil
			}
			if err != nil {
				return false, "", "", &FieldError{Resource: t.Name, Field: fmt.Sprintf("readyWhen[%d]", i), Expr: expr, Err: err}
			}
			if !ok {
				return false, "not ready", "", nil
			}
		}
		return true, "", "", nil
	}
	h := health.Compute(observed)
	if h.Ready() {
		return true, "", "", nil
	}
	if h.Status == health.Failed {
		failed = h.Message
	}
	return false, waitReason(observed, h), failed, nil
}

// waitReason says why a composed resource is not ready: the reason of its
// Ready condition when it has one (stable across reconciles), else the
// health message.
func waitReason(observed *unstructured.Unstructured, h health.Result) string {
	conds, _, _ := unstructured.NestedSlice(observed.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] != "Ready" || m["status"] == "True" {
			continue
		}
		if reason, _ := m["reason"].(string); reason != "" {
			return reason
		}
	}
	if h.Status == health.Failed {
		return failedReason(h.Message)
	}
	return h.Message
}

// failedReason is the wait reason of a failed resource without a Ready
// condition.
func failedReason(msg string) string { return "failed: " + msg }

func forEachVar(t *v1alpha1.ComposedTemplate) string {
	if t.ForEach == nil || t.ForEach.Variable == "" {
		return "each"
	}
	return t.ForEach.Variable
}

func evalBool(env *cel.Env, s string, vars map[string]any) (bool, error) {
	v, err := env.EvalString(s, vars)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("must give a bool, got %s", cel.Stringify(v))
	}
	return b, nil
}

// evalTree replaces every template string in v by its value. With
// skipMissing, fields whose expressions read missing data are left out
// instead of failing.
func evalTree(env *cel.Env, v any, vars map[string]any, path string, skipMissing bool) (any, error) {
	switch x := v.(type) {
	case string:
		if !cel.HasExpr(x) {
			return x, nil
		}
		out, err := env.EvalString(x, vars)
		if err != nil {
			if errors.Is(err, cel.ErrMissingData) {
				return nil, err
			}
			return nil, &FieldError{Field: path, Expr: x, Err: unwrapExpr(err)}
		}
		return out, nil
	case map[string]any:
		for _, k := range sortedKeys(x) {
			nv, err := evalTree(env, x[k], vars, path+"."+k, skipMissing)
			if errors.Is(err, cel.ErrMissingData) && skipMissing {
				delete(x, k)
				continue
			}
			if err != nil {
				return nil, err
			}
			x[k] = nv
		}
		return x, nil
	case []any:
		for i := range x {
			nv, err := evalTree(env, x[i], vars, fmt.Sprintf("%s[%d]", path, i), skipMissing)
			if err != nil {
				return nil, err
			}
			x[i] = nv
		}
		return x, nil
	}
	return v, nil
}

// unwrapExpr drops the `expression "..."` prefix EvalString adds, since the
// FieldError names the expression itself.
func unwrapExpr(err error) error {
	msg := err.Error()
	if strings.HasPrefix(msg, "expression ") {
		if i := strings.Index(msg, ": "); i > 0 {
			return errors.New(msg[i+2:])
		}
	}
	return err
}

func missing(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "missing data: "); i >= 0 {
		return msg[i+len("missing data: "):]
	}
	return msg
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}

// sortedIDs returns the observed ids of a forEach resource, by index.
func sortedIDs(observed map[string]*unstructured.Unstructured, name string) []string {
	var ids []string
	for id := range observed {
		rest, ok := strings.CutPrefix(id, name+"-")
		if !ok {
			continue
		}
		if _, err := strconv.Atoi(rest); err == nil {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool {
		a, _ := strconv.Atoi(strings.TrimPrefix(ids[i], name+"-"))
		b, _ := strconv.Atoi(strings.TrimPrefix(ids[j], name+"-"))
		return a < b
	})
	return ids
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

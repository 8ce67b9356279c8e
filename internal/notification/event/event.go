package event

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	notificationv1 "github.com/strata-dev/strata/apis/notification/v1alpha1"
)

// Object names the object an event is about.
type Object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	UID        string `json:"uid,omitempty"`
}

// String is Kind/namespace/name.
func (o Object) String() string { return o.Kind + "/" + o.Namespace + "/" + o.Name }

// Group is the object's API group.
func (o Object) Group() string {
	gv, err := schema.ParseGroupVersion(o.APIVersion)
	if err != nil {
		return ""
	}
	return gv.Group
}

// Event is what templates and payloads see (docs/notifications.md documents
// every field).
type Event struct {
	// InvolvedObject is the object the event is about.
	InvolvedObject Object `json:"involvedObject"`
	// Severity is "info" (a Normal event) or "error" (a Warning event).
	Severity string `json:"severity"`
	// Reason is the event's CamelCase reason.
	Reason string `json:"reason"`
	// Message is the event's message.
	Message string `json:"message"`
	// Timestamp is when the event (this occurrence) happened.
	Timestamp time.Time `json:"timestamp"`
	// Revision is the source revision the event is about, when known
	// (main@sha1:<sha>).
	Revision string `json:"revision,omitempty"`
	// Metadata is the Alert's eventMetadata.
	Metadata map[string]string `json:"metadata,omitempty"`
	// ReportingController is the component that recorded the event.
	ReportingController string `json:"reportingController,omitempty"`
	// Transition is "failure" or "recovery" in transitions mode, else empty.
	Transition string `json:"transition,omitempty"`
	// Summary is the rendered summary template.
	Summary string `json:"summary"`
	// Key identifies this occurrence (event UID and count): receivers may
	// use it to drop the duplicates at-least-once delivery can produce.
	Key string `json:"key"`
}

// CommitSHA is the SHA of Revision (the part after "sha1:" or "sha256:",
// or the whole revision when it is a bare hex string).
func (e *Event) CommitSHA() string {
	r := e.Revision
	for _, p := range []string{"sha1:", "sha256:"} {
		if i := strings.LastIndex(r, p); i >= 0 {
			return r[i+len(p):]
		}
	}
	if regexp.MustCompile(`^[0-9a-f]{7,64}$`).MatchString(r) {
		return r
	}
	return ""
}

// Failed reports a Warning event.
func (e *Event) Failed() bool { return e.Severity == notificationv1.SeverityError }

// Occurrence is one occurrence of a Kubernetes Event: its time and key.
type Occurrence struct {
	Time time.Time
	Key  string
}

// OccurrenceOf returns when ev last happened and a key that changes with
// every repeat (UID and count).
func OccurrenceOf(ev *corev1.Event) Occurrence {
	t := ev.CreationTimestamp.Time
	count := ev.Count
	switch {
	case ev.Series != nil && !ev.Series.LastObservedTime.IsZero():
		t, count = ev.Series.LastObservedTime.Time, ev.Series.Count
	case !ev.LastTimestamp.IsZero():
		t = ev.LastTimestamp.Time
	case !ev.EventTime.IsZero():
		t = ev.EventTime.Time
	case !ev.FirstTimestamp.IsZero():
		t = ev.FirstTimestamp.Time
	}
	return Occurrence{Time: t, Key: fmt.Sprintf("%s/%d", ev.UID, count)}
}

// From builds the schema's Event from a Kubernetes Event.
func From(ev *corev1.Event, metadata map[string]string) *Event {
	sev := notificationv1.SeverityInfo
	if ev.Type == corev1.EventTypeWarning {
		sev = notificationv1.SeverityError
	}
	o := OccurrenceOf(ev)
	rc := ev.ReportingController
	if rc == "" {
		rc = ev.Source.Component
	}
	return &Event{
		InvolvedObject: Object{
			APIVersion: ev.InvolvedObject.APIVersion, Kind: ev.InvolvedObject.Kind,
			Namespace: ev.InvolvedObject.Namespace, Name: ev.InvolvedObject.Name, UID: string(ev.InvolvedObject.UID),
		},
		Severity:            sev,
		Reason:              ev.Reason,
		Message:             ev.Message,
		Timestamp:           o.Time.UTC(),
		Revision:            ev.Annotations[notificationv1.RevisionAnnotation],
		Metadata:            metadata,
		ReportingController: rc,
		Key:                 o.Key,
	}
}

// IsStrata reports whether an object of this API group is a Strata kind
// (a group that is strata.dev or ends in .strata.dev).
func IsStrata(group string) bool {
	return group == "strata.dev" || strings.HasSuffix(group, ".strata.dev")
}

// Filter is an Alert's compiled selection of events.
type Filter struct {
	namespace string
	sources   []notificationv1.EventSource
	errorOnly bool
	include   []*regexp.Regexp
	exclude   []*regexp.Regexp
}

// NewFilter compiles spec; an error names the field that is invalid.
// Sources naming another namespace than ns are an error (the caller
// reports CrossNamespaceRefNotAllowed, see ErrCrossNamespace).
func NewFilter(ns string, spec *notificationv1.AlertSpec) (*Filter, error) {
	f := &Filter{namespace: ns, sources: spec.EventSources, errorOnly: spec.EventSeverity == notificationv1.SeverityError}
	for i, s := range spec.EventSources {
		if s.Namespace != "" && s.Namespace != ns {
			return nil, &CrossNamespaceError{Field: fmt.Sprintf("spec.eventSources[%d].namespace", i), Namespace: s.Namespace}
		}
	}
	for i, p := range spec.InclusionList {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("spec.inclusionList[%d]: %w", i, err)
		}
		f.include = append(f.include, re)
	}
	for i, p := range spec.ExclusionList {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("spec.exclusionList[%d]: %w", i, err)
		}
		f.exclude = append(f.exclude, re)
	}
	return f, nil
}

// CrossNamespaceError is an event source in another namespace.
type CrossNamespaceError struct{ Field, Namespace string }

func (e *CrossNamespaceError) Error() string {
	return fmt.Sprintf("%s names namespace %q: an Alert only sends events of its own namespace", e.Field, e.Namespace)
}

// Source returns the first event source matching the involved object (its
// labels are read only when a source has matchLabels, through labelsOf), or
// nil.
func (f *Filter) Source(o Object, labelsOf func() map[string]string) *notificationv1.EventSource {
	if o.Namespace != f.namespace {
		return nil
	}
	for i := range f.sources {
		s := &f.sources[i]
		if s.Kind != "*" && s.Kind != o.Kind {
			continue
		}
		if s.APIGroup != "" && s.APIGroup != o.Group() {
			continue
		}
		if s.APIGroup == "" && !IsStrata(o.Group()) {
			continue
		}
		if s.Name != "*" && s.Name != o.Name {
			continue
		}
		if len(s.MatchLabels) > 0 {
			l := labelsOf()
			ok := true
			for k, v := range s.MatchLabels {
				if l[k] != v {
					ok = false
					break
				}
			}
			if !ok {
				continue
			}
		}
		return s
	}
	return nil
}

// Wanted applies severity and the inclusion/exclusion lists to an event
// whose object matched a source. recovery events of transitions mode pass
// the severity filter.
func (f *Filter) Wanted(e *Event, recovery bool) bool {
	if f.errorOnly && !e.Failed() && !recovery {
		return false
	}
	if len(f.include) > 0 {
		ok := false
		for _, re := range f.include {
			if re.MatchString(e.Message) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, re := range f.exclude {
		if re.MatchString(e.Message) {
			return false
		}
	}
	return true
}

// Default templates.
const (
	DefaultSummary  = `{{.InvolvedObject.Kind}} {{.InvolvedObject.Namespace}}/{{.InvolvedObject.Name}}: {{.Reason}}`
	DefaultTemplate = `{{.Message}}`
)

// Templates are an Alert's compiled summary and body templates.
type Templates struct{ summary, body *template.Template }

// NewTemplates parses summary and body (empty takes the defaults); an error
// names the field.
func NewTemplates(summary, body string) (*Templates, error) {
	if summary == "" {
		summary = DefaultSummary
	}
	if body == "" {
		body = DefaultTemplate
	}
	s, err := template.New("summary").Option("missingkey=zero").Parse(summary)
	if err != nil {
		return nil, fmt.Errorf("spec.summary: %w", err)
	}
	b, err := template.New("template").Option("missingkey=zero").Parse(body)
	if err != nil {
		return nil, fmt.Errorf("spec.template: %w", err)
	}
	return &Templates{summary: s, body: b}, nil
}

// maxRendered bounds what a template may produce.
const maxRendered = 64 << 10

// Render fills e.Summary and returns the body. An execution error (a field
// that is not in the schema) names the template.
func (t *Templates) Render(e *Event) (string, error) {
	var s bytes.Buffer
	if err := t.summary.Execute(&limited{&s}, e); err != nil {
		return "", fmt.Errorf("spec.summary: %w", err)
	}
	e.Summary = strings.TrimSpace(s.String())
	var b bytes.Buffer
	if err := t.body.Execute(&limited{&b}, e); err != nil {
		return "", fmt.Errorf("spec.template: %w", err)
	}
	return b.String(), nil
}

type limited struct{ b *bytes.Buffer }

func (l *limited) Write(p []byte) (int, error) {
	if l.b.Len()+len(p) > maxRendered {
		return 0, fmt.Errorf("rendered text is larger than %d bytes", maxRendered)
	}
	return l.b.Write(p)
}

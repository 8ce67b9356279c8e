package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Alert modes.
const (
	// ModeEvery sends every matching event (identical repeats within
	// repeatInterval are sent once).
	ModeEvery = "every"
	// ModeTransitions sends an object's first failure (a Warning event) and
	// then its recovery (the next Normal event), nothing in between
	// (a still-failing object is reminded of every repeatInterval, if set).
	ModeTransitions = "transitions"
)

// Severities.
const (
	// SeverityInfo selects every event (Normal and Warning).
	SeverityInfo = "info"
	// SeverityError selects Warning events only (and, in transitions mode,
	// the recovery that ends a failure).
	SeverityError = "error"
)

// LocalReference names an object in the same namespace.
type LocalReference struct {
	// Name of the object.
	// +required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// EventSource selects the objects whose events an Alert sends.
type EventSource struct {
	// Kind of the involved object, e.g. Sync, GitRepository, a claim or
	// composite kind, a managed resource kind, AnalysisRun.
	// +required
	// +kubebuilder:validation:MinLength=1
	Kind string `json:"kind"`
	// APIGroup of the kind; empty matches any Strata group (one ending in
	// strata.dev).
	// +optional
	APIGroup string `json:"apiGroup,omitempty"`
	// Name of the object, or `*` for every object of the kind.
	// +required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Namespace of the object; empty or the Alert's own. Events of other
	// namespaces are never sent (reason CrossNamespaceRefNotAllowed).
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// MatchLabels narrows `*` to objects carrying these labels.
	// +optional
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// AlertSpec is which events go to which Provider, and how.
type AlertSpec struct {
	// ProviderRef names a Provider in the Alert's namespace.
	// +required
	ProviderRef LocalReference `json:"providerRef"`
	// EventSources selects the objects whose events are sent.
	// +required
	// +kubebuilder:validation:MinItems=1
	EventSources []EventSource `json:"eventSources"`
	// EventSeverity: info sends every event, error only Warning events.
	// +optional
	// +kubebuilder:default=info
	// +kubebuilder:validation:Enum=info;error
	EventSeverity string `json:"eventSeverity,omitempty"`
	// InclusionList: when set, only events whose message matches one of
	// these regular expressions (Go RE2 syntax) are sent.
	// +optional
	InclusionList []string `json:"inclusionList,omitempty"`
	// ExclusionList: events whose message matches one of these regular
	// expressions are not sent.
	// +optional
	ExclusionList []string `json:"exclusionList,omitempty"`
	// EventMetadata is added to every message (as `.Metadata` in templates,
	// fields in chat messages, labels in Alertmanager).
	// +optional
	EventMetadata map[string]string `json:"eventMetadata,omitempty"`
	// Mode: every (each matching event) or transitions (a failure once,
	// then its recovery).
	// +optional
	// +kubebuilder:default=every
	// +kubebuilder:validation:Enum=every;transitions
	Mode string `json:"mode,omitempty"`
	// RepeatInterval: in every mode, identical events (same object, reason
	// and message) within it are sent once; in transitions mode, a failure
	// that lasts is sent again after it. Zero never repeats (transitions)
	// and sends every occurrence (every).
	// +optional
	RepeatInterval *metav1.Duration `json:"repeatInterval,omitempty"`
	// Summary is a Go text/template over the event (see
	// docs/notifications.md) giving a message's title; the default is
	// `{{.InvolvedObject.Kind}} {{.InvolvedObject.Namespace}}/{{.InvolvedObject.Name}}: {{.Reason}}`.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Summary string `json:"summary,omitempty"`
	// Template is a Go text/template over the event giving a message's
	// body; the default is `{{.Message}}`.
	// +optional
	// +kubebuilder:validation:MaxLength=32768
	Template string `json:"template,omitempty"`
	// Suspend stops sending; events that occur meanwhile are sent when it
	// resumes (the cursor stays).
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// DeliveredEvent describes the last event an Alert delivered.
type DeliveredEvent struct {
	// Object is Kind/namespace/name of the involved object.
	// +required
	Object string `json:"object"`
	// Reason of the event.
	// +required
	Reason string `json:"reason"`
	// Message of the event (bounded).
	// +optional
	Message string `json:"message,omitempty"`
	// Time the event occurred.
	// +required
	Time metav1.MicroTime `json:"time"`
	// DeliveredAt is when the Provider accepted it.
	// +required
	DeliveredAt metav1.Time `json:"deliveredAt"`
}

// Cursor is how far an Alert has handled the event stream: every event
// occurrence before Time, and those at Time listed in Keys, are handled
// (delivered or filtered out). It is written with optimistic locking after
// each delivery, so a restart re-sends at most the message in flight.
type Cursor struct {
	// Time of the newest handled occurrence.
	// +required
	Time metav1.MicroTime `json:"time"`
	// Keys (event UID and count) of the handled occurrences at Time.
	// +optional
	// +kubebuilder:validation:MaxItems=1000
	Keys []string `json:"keys,omitempty"`
}

// ObjectState is what an Alert remembers about one involved object: whether
// it is failing (transitions mode) and what was last sent for it.
type ObjectState struct {
	// Object is Kind/namespace/name.
	// +required
	Object string `json:"object"`
	// Failing is true between a sent failure and its recovery.
	// +optional
	Failing bool `json:"failing,omitempty"`
	// LastKey identifies the last message sent (reason and message).
	// +optional
	LastKey string `json:"lastKey,omitempty"`
	// LastSent is when it was sent.
	// +optional
	LastSent *metav1.Time `json:"lastSent,omitempty"`
}

// AlertStatus is the observed state of an Alert.
type AlertStatus struct {
	// ObservedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, Reconciling, Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Cursor is how far the event stream has been handled.
	// +optional
	Cursor *Cursor `json:"cursor,omitempty"`
	// LastDeliveredEvent is the last event the Provider accepted.
	// +optional
	LastDeliveredEvent *DeliveredEvent `json:"lastDeliveredEvent,omitempty"`
	// Objects is per-object state (failing, last sent), bounded.
	// +optional
	// +kubebuilder:validation:MaxItems=500
	Objects []ObjectState `json:"objects,omitempty"`
	// Failures counts consecutive failed delivery attempts (backoff).
	// +optional
	Failures int32 `json:"failures,omitempty"`
}

// Alert sends Strata's Kubernetes events about selected objects to a
// Provider.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=strata
// +kubebuilder:printcolumn:name="PROVIDER",type=string,JSONPath=`.spec.providerRef.name`
// +kubebuilder:printcolumn:name="MODE",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="READY",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="LAST",type=string,JSONPath=`.status.lastDeliveredEvent.reason`
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type Alert struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec AlertSpec `json:"spec"`
	// +optional
	Status AlertStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions for internal/conditions.
func (a *Alert) GetConditions() *[]metav1.Condition { return &a.Status.Conditions }

// +kubebuilder:object:root=true

// AlertList is a list of Alerts.
type AlertList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Alert `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Alert{}, &AlertList{})
}

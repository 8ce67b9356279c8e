package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Phases of an AnalysisRun, of each metric, and of each measurement.
// Running is a run or metric still being measured, or a measurement (a Job)
// still in flight.
const (
	PhasePending      = "Pending"
	PhaseRunning      = "Running"
	PhaseSuccessful   = "Successful"
	PhaseFailed       = "Failed"
	PhaseInconclusive = "Inconclusive"
	PhaseError        = "Error"
)

// AnalysisRun reasons (condition Ready). A finished run is Ready=True with
// reason Successful, or Ready=False (and Stalled=True) with reason Failed,
// Inconclusive or Error; a running one is Ready=False, Reconciling=True with
// reason Running.
const (
	// ReasonRunning: measurements are being taken.
	ReasonRunning = "Running"
	// ReasonSuccessful: every metric passed.
	ReasonSuccessful = "Successful"
	// ReasonFailed: a metric crossed its failureLimit (or never reached its
	// consecutiveSuccessLimit).
	ReasonFailed = "Failed"
	// ReasonInconclusive: a metric crossed its inconclusiveLimit.
	ReasonInconclusive = "Inconclusive"
	// ReasonError: a metric crossed its consecutiveErrorLimit, or the run
	// could not start (a template is missing, an argument cannot be read as
	// the run's service account, a condition does not compile); the
	// message names the metric, template or argument.
	ReasonError = "Error"
	// ReasonTerminated: spec.terminate stopped the run.
	ReasonTerminated = "Terminated"
)

// Event reasons of AnalysisRun.
const (
	// EventMeasurementFailed names the metric, the value and the condition
	// of a Failed, Inconclusive or Error measurement.
	EventMeasurementFailed = "MeasurementFailed"
	// EventAnalysisCompleted reports the verdict.
	EventAnalysisCompleted = "AnalysisCompleted"
	// EventInvalidSpec reports a run that cannot start.
	EventInvalidSpec = "InvalidSpec"
)

// TemplateRef names an AnalysisTemplate in the run's namespace or a
// ClusterAnalysisTemplate.
type TemplateRef struct {
	// Name of the template.
	// +required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// ClusterScope names a ClusterAnalysisTemplate.
	// +optional
	ClusterScope bool `json:"clusterScope,omitempty"`
}

// SubjectReference names the object under analysis, in the run's namespace.
type SubjectReference struct {
	// APIVersion of the object.
	// +required
	APIVersion string `json:"apiVersion"`
	// Kind of the object.
	// +required
	Kind string `json:"kind"`
	// Name of the object.
	// +required
	Name string `json:"name"`
}

// AnalysisRunSpec says what to measure.
// +kubebuilder:validation:XValidation:rule="(has(self.templates) ? size(self.templates) : 0) + (has(self.metrics) ? size(self.metrics) : 0) > 0",message="set templates or metrics"
type AnalysisRunSpec struct {
	// Templates whose metrics the run measures.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Templates []TemplateRef `json:"templates,omitempty"`
	// Args give or override the templates' arguments.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Args []Argument `json:"args,omitempty"`
	// Metrics measured besides the templates'.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Metrics []Metric `json:"metrics,omitempty"`
	// Subject is the object under analysis; fieldRef arguments read it.
	// +optional
	Subject *SubjectReference `json:"subject,omitempty"`
	// ServiceAccountName in the run's namespace whose rights the run uses to
	// read arguments, objects and credentials and to create Jobs; defaults
	// to the manager's --default-service-account.
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// Terminate stops a running run; it ends with its current verdict of
	// the metrics measured so far (Successful if none failed).
	// +optional
	Terminate bool `json:"terminate,omitempty"`
}

// Measurement is one measurement of a metric.
type Measurement struct {
	// Phase: Successful, Failed, Inconclusive, Error, or Running while a Job
	// is in flight.
	// +required
	Phase string `json:"phase"`
	// Value measured, as JSON (`[0.02]`), or empty.
	// +optional
	Value string `json:"value,omitempty"`
	// Message says why it is not Successful, naming the condition.
	// +optional
	Message string `json:"message,omitempty"`
	// Query is the resolved PromQL query, URL, Job name or object read, with
	// Secret-sourced arguments masked.
	// +optional
	Query string `json:"query,omitempty"`
	// StartedAt is when the measurement began.
	// +required
	StartedAt metav1.Time `json:"startedAt"`
	// FinishedAt is when it ended.
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`
}

// MetricResult is the state of one metric of a run.
type MetricResult struct {
	// Name of the metric.
	// +required
	Name string `json:"name"`
	// Phase: Running, Successful, Failed, Inconclusive or Error.
	// +required
	Phase string `json:"phase"`
	// Message says why the metric ended as it did.
	// +optional
	Message string `json:"message,omitempty"`
	// Count of finished measurements.
	// +optional
	Count int32 `json:"count,omitempty"`
	// Successful measurements.
	// +optional
	Successful int32 `json:"successful,omitempty"`
	// Failed measurements.
	// +optional
	Failed int32 `json:"failed,omitempty"`
	// Inconclusive measurements.
	// +optional
	Inconclusive int32 `json:"inconclusive,omitempty"`
	// Error measurements.
	// +optional
	Error int32 `json:"error,omitempty"`
	// ConsecutiveError counts Error measurements since the last other one.
	// +optional
	ConsecutiveError int32 `json:"consecutiveError,omitempty"`
	// ConsecutiveSuccess counts Successful measurements since the last
	// other one.
	// +optional
	ConsecutiveSuccess int32 `json:"consecutiveSuccess,omitempty"`
	// Measurements, oldest first; the oldest are dropped beyond 100 (the
	// counters keep counting).
	// +optional
	Measurements []Measurement `json:"measurements,omitempty"`
}

// AnalysisRunStatus is what the run measured and its verdict.
type AnalysisRunStatus struct {
	// ObservedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, Reconciling, Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Phase: Pending, Running, Successful, Failed, Inconclusive or Error.
	// +optional
	Phase string `json:"phase,omitempty"`
	// Message explains the verdict, naming the deciding metric and value.
	// +optional
	Message string `json:"message,omitempty"`
	// StartedAt is when the first reconcile began measuring.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// CompletedAt is when the verdict was reached.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
	// MetricResults, one per metric, in the order measured.
	// +optional
	MetricResults []MetricResult `json:"metricResults,omitempty"`
}

// Completed says whether the run has its verdict.
func (s *AnalysisRunStatus) Completed() bool {
	switch s.Phase {
	case PhaseSuccessful, PhaseFailed, PhaseInconclusive, PhaseError:
		return true
	}
	return false
}

// AnalysisRun measures metrics until each one passes or one fails, and
// keeps every measurement.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=strata
// +kubebuilder:printcolumn:name="PHASE",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="READY",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=`.status.message`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type AnalysisRun struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec AnalysisRunSpec `json:"spec"`
	// +optional
	Status AnalysisRunStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions for internal/conditions.
func (r *AnalysisRun) GetConditions() *[]metav1.Condition { return &r.Status.Conditions }

// +kubebuilder:object:root=true

// AnalysisRunList is a list of AnalysisRuns.
type AnalysisRunList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AnalysisRun `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AnalysisRun{}, &AnalysisRunList{})
}

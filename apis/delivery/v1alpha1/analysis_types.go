package v1alpha1

import (
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NoData policies: what a measurement that returned nothing (an empty
// Prometheus vector, NaN, a JSON path that matched nothing, no live object)
// counts as.
const (
	NoDataFail         = "Fail"
	NoDataPass         = "Pass"
	NoDataInconclusive = "Inconclusive"
)

// Argument is a named value substituted into a metric as {{args.NAME}}.
// +kubebuilder:validation:XValidation:rule="!(has(self.value) && has(self.valueFrom))",message="value and valueFrom are exclusive"
type Argument struct {
	// Name of the argument.
	// +required
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_.-]*$`
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// Value of the argument. A template argument without value or
	// valueFrom must be given by the run.
	// +optional
	Value *string `json:"value,omitempty"`
	// ValueFrom reads the value from a Secret or ConfigMap in the run's
	// namespace, or from a field of the object under analysis; reads act
	// as the run's service account.
	// +optional
	ValueFrom *ArgumentValueFrom `json:"valueFrom,omitempty"`
}

// ArgumentValueFrom is where an argument's value comes from; set one.
// +kubebuilder:validation:XValidation:rule="(has(self.secretKeyRef) ? 1 : 0) + (has(self.configMapKeyRef) ? 1 : 0) + (has(self.fieldRef) ? 1 : 0) == 1",message="set exactly one of secretKeyRef, configMapKeyRef, fieldRef"
type ArgumentValueFrom struct {
	// SecretKeyRef reads a key of a Secret in the run's namespace. Its value
	// is masked in the resolved queries and URLs the run records.
	// +optional
	SecretKeyRef *KeySelector `json:"secretKeyRef,omitempty"`
	// ConfigMapKeyRef reads a key of a ConfigMap in the run's namespace.
	// +optional
	ConfigMapKeyRef *KeySelector `json:"configMapKeyRef,omitempty"`
	// FieldRef reads a field of the run's subject (spec.subject), e.g.
	// `{.metadata.labels.app}`.
	// +optional
	FieldRef *FieldSelector `json:"fieldRef,omitempty"`
}

// KeySelector names a key of a Secret or ConfigMap in the same namespace.
type KeySelector struct {
	// Name of the object.
	// +required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Key in its data.
	// +required
	// +kubebuilder:validation:MinLength=1
	Key string `json:"key"`
}

// FieldSelector is a Kubernetes JSONPath into the subject.
type FieldSelector struct {
	// FieldPath, e.g. `{.metadata.name}` or `.status.lastAttemptedRevision`.
	// +required
	// +kubebuilder:validation:MinLength=1
	FieldPath string `json:"fieldPath"`
}

// Metric is one thing to measure, how often, and when it passes.
type Metric struct {
	// Name of the metric, unique in a run.
	// +required
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=40
	Name string `json:"name"`
	// Interval between measurements; without it (and without count) the
	// metric is measured once.
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`
	// InitialDelay before the first measurement.
	// +optional
	InitialDelay *metav1.Duration `json:"initialDelay,omitempty"`
	// Count of measurements; after that many the metric is Successful
	// unless a limit was crossed. Without count, a metric with an interval
	// is measured until a limit decides it.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Count *int32 `json:"count,omitempty"`
	// FailureLimit is how many Failed measurements are tolerated: one more
	// fails the metric. -1 tolerates any number.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=-1
	FailureLimit *int32 `json:"failureLimit,omitempty"`
	// ConsecutiveSuccessLimit, when above 0, makes the metric Successful
	// after that many Successful measurements in a row; reaching count
	// without them fails it.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ConsecutiveSuccessLimit *int32 `json:"consecutiveSuccessLimit,omitempty"`
	// ConsecutiveErrorLimit is how many Error measurements in a row are
	// tolerated: one more ends the metric in Error.
	// +optional
	// +kubebuilder:default=4
	// +kubebuilder:validation:Minimum=0
	ConsecutiveErrorLimit *int32 `json:"consecutiveErrorLimit,omitempty"`
	// InconclusiveLimit is how many Inconclusive measurements are
	// tolerated: one more ends the metric Inconclusive. -1 tolerates any
	// number.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=-1
	InconclusiveLimit *int32 `json:"inconclusiveLimit,omitempty"`
	// NoData is what a measurement that returned no data counts as: Fail,
	// Pass or Inconclusive. There is no default: say it.
	// +required
	// +kubebuilder:validation:Enum=Fail;Pass;Inconclusive
	NoData string `json:"noData"`
	// SuccessCondition is a CEL expression over `result` (a number, string,
	// list or map) that must be true for a Successful measurement, e.g.
	// `result[0] < 0.05`.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	SuccessCondition string `json:"successCondition,omitempty"`
	// FailureCondition is a CEL expression over `result` that makes a
	// measurement Failed when true. With both conditions, a measurement
	// that meets neither is Inconclusive. With neither, a boolean result
	// decides and any other result is Successful.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	FailureCondition string `json:"failureCondition,omitempty"`
	// Provider takes the measurement.
	// +required
	Provider MetricProvider `json:"provider"`
}

// MetricProvider is where a measurement comes from; set exactly one.
// +kubebuilder:validation:XValidation:rule="(has(self.prometheus) ? 1 : 0) + (has(self.web) ? 1 : 0) + (has(self.job) ? 1 : 0) + (has(self.kubernetes) ? 1 : 0) == 1",message="set exactly one of prometheus, web, job, kubernetes"
type MetricProvider struct {
	// Prometheus runs an instant query; a vector becomes a list of its
	// sample values, a scalar a number.
	// +optional
	Prometheus *PrometheusMetric `json:"prometheus,omitempty"`
	// Web makes an HTTP request; the result is the JSON body, or the part
	// jsonPath selects.
	// +optional
	Web *WebMetric `json:"web,omitempty"`
	// Job runs a Kubernetes Job as the run's service account; the
	// measurement is Successful when it completes, Failed when it fails.
	// +optional
	Job *JobMetric `json:"job,omitempty"`
	// Kubernetes evaluates a condition over live objects.
	// +optional
	Kubernetes *KubernetesMetric `json:"kubernetes,omitempty"`
}

// Header is an HTTP header.
type Header struct {
	// Name of the header.
	// +required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Value of the header; {{args.NAME}} is substituted.
	// +optional
	Value string `json:"value,omitempty"`
}

// PrometheusMetric is an instant PromQL query.
type PrometheusMetric struct {
	// Address of the Prometheus server, e.g. http://prometheus:9090.
	// +required
	// +kubebuilder:validation:Pattern=`^https?://`
	Address string `json:"address"`
	// Query in PromQL. {{args.NAME}} is substituted escaped for a PromQL
	// string, so write it inside quotes: `app="{{args.app}}"`.
	// +required
	// +kubebuilder:validation:MinLength=1
	Query string `json:"query"`
	// Timeout of the query; defaults to 10s.
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// Headers sent with the query.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Headers []Header `json:"headers,omitempty"`
	// Authentication with the server.
	// +optional
	Authentication *Authentication `json:"authentication,omitempty"`
}

// Authentication reads credentials from a Secret in the run's namespace:
// `token` (sent as a bearer token) or `username` and `password` (basic).
type Authentication struct {
	// SecretRef names the Secret.
	// +required
	SecretRef LocalReference `json:"secretRef"`
}

// LocalReference names an object in the same namespace.
type LocalReference struct {
	// Name of the object.
	// +required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// WebMetric is an HTTP request.
type WebMetric struct {
	// URL to request; {{args.NAME}} is substituted URL-escaped.
	// +required
	// +kubebuilder:validation:Pattern=`^https?://`
	URL string `json:"url"`
	// Method of the request.
	// +optional
	// +kubebuilder:default=GET
	// +kubebuilder:validation:Enum=GET;POST;PUT
	Method string `json:"method,omitempty"`
	// Headers of the request.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Headers []Header `json:"headers,omitempty"`
	// Body of the request.
	// +optional
	Body string `json:"body,omitempty"`
	// JSONPath selects the result from the JSON body (Kubernetes JSONPath,
	// e.g. `{.data.errorRate}`); without it the whole body is the result.
	// +optional
	JSONPath string `json:"jsonPath,omitempty"`
	// Timeout of the request; defaults to 10s.
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// JobMetric is a Job to run per measurement.
type JobMetric struct {
	// Labels added to the Job.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// Spec of the Job; {{args.NAME}} is substituted in its strings.
	// +required
	// +kubebuilder:validation:Type=object
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	Spec batchv1.JobSpec `json:"spec"`
}

// KubernetesMetric evaluates a CEL condition over live objects in the run's
// namespace, read as the run's service account.
// +kubebuilder:validation:XValidation:rule="!(has(self.name) && has(self.selector))",message="name and selector are exclusive"
type KubernetesMetric struct {
	// APIVersion of the objects.
	// +required
	// +kubebuilder:validation:MinLength=1
	APIVersion string `json:"apiVersion"`
	// Kind of the objects.
	// +required
	// +kubebuilder:validation:MinLength=1
	Kind string `json:"kind"`
	// Name of one object.
	// +optional
	Name string `json:"name,omitempty"`
	// Selector picks the objects by label; without name and selector every
	// object of the kind in the namespace is read.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
	// Condition is a CEL expression over `objects` (the list of objects
	// read) whose value is the measurement's result, e.g.
	// `objects.all(o, o.status.readyReplicas == o.spec.replicas)`. No
	// object is no data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Condition string `json:"condition"`
}

// AnalysisTemplateSpec is a reusable set of metrics with their arguments.
type AnalysisTemplateSpec struct {
	// Args the metrics use; a run gives the ones without value.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Args []Argument `json:"args,omitempty"`
	// Metrics to measure.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Metrics []Metric `json:"metrics"`
}

// AnalysisTemplate is a namespaced set of metrics that AnalysisRuns in its
// namespace use.
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=strata
// +kubebuilder:printcolumn:name="METRICS",type=string,JSONPath=`.spec.metrics[*].name`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type AnalysisTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec AnalysisTemplateSpec `json:"spec"`
}

// +kubebuilder:object:root=true

// AnalysisTemplateList is a list of AnalysisTemplates.
type AnalysisTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AnalysisTemplate `json:"items"`
}

// ClusterAnalysisTemplate is a cluster-wide set of metrics that AnalysisRuns
// in any namespace use; secrets and objects it reads are still the run's.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=strata
// +kubebuilder:printcolumn:name="METRICS",type=string,JSONPath=`.spec.metrics[*].name`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterAnalysisTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec AnalysisTemplateSpec `json:"spec"`
}

// +kubebuilder:object:root=true

// ClusterAnalysisTemplateList is a list of ClusterAnalysisTemplates.
type ClusterAnalysisTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterAnalysisTemplate `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AnalysisTemplate{}, &AnalysisTemplateList{}, &ClusterAnalysisTemplate{}, &ClusterAnalysisTemplateList{})
}

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The contract between a Rollout and whoever applies the Deployment it
// targets (a Sync, kubectl, a CI job):
//
//   - The Rollout controller keeps the target Deployment's spec.paused true
//     (server-side apply with the field manager RolloutFieldManagerPrefix +
//     "<namespace>/<name>", that field only)
//     and sets RolloutAnnotation on it to the Rollout's name. A writer that
//     finds RolloutAnnotation on a Deployment knows that a template change
//     it applies does not roll the pods at once: the Rollout takes it from
//     there. Its health is the Rollout's Ready condition, not the
//     Deployment's (a paused Deployment never reports progress).
//   - GitRevisionAnnotation, set by the writer on the Deployment's metadata
//     (not its pod template, which would change the pod-template hash),
//     says which Git revision brought the current template; the Rollout
//     records it in status.canaryRevision.gitRevision when it first sees
//     that template, and in status.stableRevision after promotion.
//   - An aborted rollout is reported in status.aborted (the aborted canary
//     revision, the stable revision traffic went back to, the reason and
//     message), with Ready=False reason RolloutAborted. It stays so until
//     the Deployment's template changes again (a fresh rollout starts by
//     itself) or the rollout is retried (RetryAnnotation). A writer should
//     not re-apply the same aborted template to "fix" it: that changes
//     nothing, the Rollout keeps it aborted.
const (
	// RolloutAnnotation is set by the Rollout controller on the Deployment
	// it targets; its value is the Rollout's name (same namespace).
	RolloutAnnotation = "delivery.strata.dev/rollout"
	// GitRevisionAnnotation is set by a Sync (or any writer) on a
	// Deployment's metadata: the Git revision its template came from.
	GitRevisionAnnotation = "delivery.strata.dev/git-revision"
	// RolloutFieldManagerPrefix starts the server-side apply field manager
	// ("strata/rollout/<namespace>/<name>") of what a Rollout writes on
	// objects it does not own: the Deployment's spec.paused and
	// RolloutAnnotation, the pod-template-hash key of Service selectors,
	// HTTPRoute backendRefs.
	RolloutFieldManagerPrefix = "strata/rollout/"
	// PodTemplateHashLabel is the label that tells the pods of one
	// revision from another's (the Deployment controller's own label).
	PodTemplateHashLabel = "pod-template-hash"
	// RolloutNameLabel is set on the ReplicaSets and Services a Rollout
	// creates.
	RolloutNameLabel = "delivery.strata.dev/rollout"
)

// Requests to a Rollout are annotations on it, so kubectl can make them as
// the strata CLI does: `kubectl annotate rollout NAME
// delivery.strata.dev/promote=$(date +%s) --overwrite`. The value is a
// token: a request is handled once per new value (the controller records
// the last handled token in status.handledRequests); the annotation is
// never removed by the controller.
const (
	// PromoteAnnotation skips the current pause or analysis step.
	PromoteAnnotation = "delivery.strata.dev/promote"
	// PromoteFullAnnotation skips every remaining step (and blue-green's
	// pre-promotion wait): the canary becomes stable now.
	PromoteFullAnnotation = "delivery.strata.dev/promote-full"
	// AbortAnnotation aborts the rollout in progress: all traffic and
	// replicas back on the stable revision.
	AbortAnnotation = "delivery.strata.dev/abort"
	// RetryAnnotation starts the aborted revision's rollout again from the
	// first step.
	RetryAnnotation = "delivery.strata.dev/retry"
	// AbortAlertAnnotation is written by the Alertmanager receiver when a
	// firing alert matches spec.abortOn.alerts; its value names the alert
	// and the canary revision it fired for (JSON {"alert","revision","at"}).
	AbortAlertAnnotation = "delivery.strata.dev/abort-alert"
)

// Phases of a Rollout (status.phase).
const (
	// RolloutPhaseHealthy: every pod runs the stable revision; nothing to
	// roll out.
	RolloutPhaseHealthy = "Healthy"
	// RolloutPhaseProgressing: a canary or preview revision is being
	// rolled out.
	RolloutPhaseProgressing = "Progressing"
	// RolloutPhasePaused: waiting at a pause step (or for promotion).
	RolloutPhasePaused = "Paused"
	// RolloutPhaseAborted: the canary was aborted; traffic is on stable.
	RolloutPhaseAborted = "Aborted"
	// RolloutPhaseDegraded: the Rollout cannot act (target missing,
	// refused, Service selecting no pods...).
	RolloutPhaseDegraded = "Degraded"
)

// ConditionPaused is True while the Rollout waits at a pause step or for
// promotion (reason RolloutPaused).
const ConditionPaused = "Paused"

// Rollout condition reasons (conditions Ready, Reconciling, Stalled,
// Paused).
const (
	// ReasonRolloutHealthy (Ready=True): the stable revision serves every
	// pod, no rollout in progress.
	ReasonRolloutHealthy = "RolloutHealthy"
	// ReasonRolloutProgressing (Reconciling=True): a step is in progress;
	// the message names the step and revision.
	ReasonRolloutProgressing = "RolloutProgressing"
	// ReasonRolloutPaused (Paused=True, Reconciling=True): a pause step, or
	// blue-green waiting for promotion.
	ReasonRolloutPaused = "RolloutPaused"
	// ReasonAnalysisRunning (Reconciling=True): an analysis step waits for
	// its AnalysisRun.
	ReasonAnalysisRunning = "AnalysisRunning"
	// ReasonRolloutAborted (Ready=False, Stalled=True): the canary revision
	// was aborted (failed analysis, progress deadline, a firing alert, or
	// a request); the message names both revisions and why.
	ReasonRolloutAborted = "RolloutAborted"
	// ReasonTargetNotFound (Ready=False): the target Deployment does not
	// exist; the message names it.
	ReasonTargetNotFound = "TargetNotFound"
	// ReasonTargetUnsupported (Ready=False, Stalled=True): the target is
	// not a Deployment (StatefulSets and DaemonSets are out of scope).
	ReasonTargetUnsupported = "TargetUnsupported"
	// ReasonServiceNotFound (Ready=False): spec.service (or the preview
	// Service) does not exist.
	ReasonServiceNotFound = "ServiceNotFound"
	// ReasonServiceSelectsNoPods (Ready=False): the Service's selector does
	// not select the target's pods; no traffic is changed.
	ReasonServiceSelectsNoPods = "ServiceSelectsNoPods"
	// ReasonRouteNotReferencingService (Ready=False): an HTTPRoute of
	// trafficRouting.gatewayAPI does not exist or has no backendRef to the
	// Service.
	ReasonRouteNotReferencingService = "RouteNotReferencingService"
	// ReasonAccessDenied (Ready=False, Stalled=True): the Rollout's service
	// account may not read or write an object it needs; the message names
	// it.
	ReasonAccessDenied = "AccessDenied"
	// ReasonResourceConflict (Ready=False, Stalled=True): an object the
	// Rollout would create exists and belongs to someone else.
	ReasonResourceConflict = "ResourceConflict"
	// ReasonProgressDeadlineExceeded is the abort reason of a canary whose
	// step did not become ready within spec.progressDeadline.
	ReasonProgressDeadlineExceeded = "ProgressDeadlineExceeded"
	// ReasonAnalysisFailed is the abort reason of a failed, inconclusive or
	// errored AnalysisRun.
	ReasonAnalysisFailed = "AnalysisFailed"
	// ReasonAbortRequested is the abort reason of AbortAnnotation.
	ReasonAbortRequested = "AbortRequested"
	// ReasonAlertFired is the abort reason of an alert matching
	// spec.abortOn.alerts.
	ReasonAlertFired = "AlertFired"
)

// Event reasons of a Rollout: one event per step and per decision.
const (
	EventStepStarted   = "StepStarted"
	EventStepCompleted = "StepCompleted"
	EventPromoted      = "Promoted"
	EventAborted       = "Aborted"
	EventRetried       = "Retried"
	EventNewRevision   = "NewRevision"
	EventTrafficSwitch = "TrafficSwitched"
)

// Stages of a blue-green rollout: its status.currentStep.
const (
	// BlueGreenStagePreview: the preview ReplicaSet scales up; the stage
	// ends when its pods are Ready.
	BlueGreenStagePreview int32 = iota
	// BlueGreenStagePrePromotion: prePromotionAnalysis runs.
	BlueGreenStagePrePromotion
	// BlueGreenStageAwaitPromotion: waits for autoPromotion.after or a
	// promote request (Paused=True).
	BlueGreenStageAwaitPromotion
	// BlueGreenStageSwitch: the preview scales to spec.replicas and, once
	// Ready, the active Service switches to it.
	BlueGreenStageSwitch
	// BlueGreenStagePostPromotion: postPromotionAnalysis runs; failing
	// switches the active Service back.
	BlueGreenStagePostPromotion
	// BlueGreenStageScaleDown: after scaleDownDelay the new revision is
	// handed to the Deployment, which scales the old one down.
	BlueGreenStageScaleDown
)

// RolloutTargetReference names the workload a Rollout rolls out, in its
// namespace.
type RolloutTargetReference struct {
	// APIVersion of the workload; apps/v1.
	// +optional
	// +kubebuilder:default="apps/v1"
	APIVersion string `json:"apiVersion,omitempty"`
	// Kind of the workload: Deployment. StatefulSet and DaemonSet are
	// accepted by the schema but refused by the controller with
	// TargetUnsupported.
	// +required
	// +kubebuilder:validation:Enum=Deployment;StatefulSet;DaemonSet
	Kind string `json:"kind"`
	// Name of the workload.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// RolloutAnalysis names AnalysisTemplates and gives their args; the
// Rollout creates an AnalysisRun from them, whose subject is the Rollout,
// so args may read `{.status.canaryRevision.podTemplateHash}` and
// `{.status.stableRevision.podTemplateHash}` by fieldRef.
type RolloutAnalysis struct {
	// Templates whose metrics the run measures.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Templates []TemplateRef `json:"templates"`
	// Args give or override the templates' arguments.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Args []Argument `json:"args,omitempty"`
}

// BackgroundAnalysis runs across the canary steps, from StartingStep on;
// it failing aborts the rollout.
type BackgroundAnalysis struct {
	RolloutAnalysis `json:",inline"`
	// StartingStep is the index of the step the analysis starts at.
	// +optional
	// +kubebuilder:validation:Minimum=0
	StartingStep *int32 `json:"startingStep,omitempty"`
}

// RolloutPause waits at a step.
type RolloutPause struct {
	// Duration of the pause; without it the Rollout waits for promotion
	// (PromoteAnnotation, `strata rollout promote`).
	// +optional
	Duration *metav1.Duration `json:"duration,omitempty"`
}

// SetCanaryScale sets the canary's replicas independently of its traffic
// weight (used with trafficRouting; without it the weight is the replica
// ratio).
// +kubebuilder:validation:XValidation:rule="(has(self.replicas) ? 1 : 0) + (has(self.weight) ? 1 : 0) + (has(self.matchTrafficWeight) && self.matchTrafficWeight ? 1 : 0) == 1",message="set exactly one of replicas, weight, matchTrafficWeight"
type SetCanaryScale struct {
	// Replicas of the canary.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Replicas *int32 `json:"replicas,omitempty"`
	// Weight: the canary's replicas are this percentage of the
	// Deployment's spec.replicas.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Weight *int32 `json:"weight,omitempty"`
	// MatchTrafficWeight returns to the default: replicas follow the
	// traffic weight.
	// +optional
	MatchTrafficWeight bool `json:"matchTrafficWeight,omitempty"`
}

// CanaryStep is one step of a canary; set exactly one field.
// +kubebuilder:validation:XValidation:rule="(has(self.setWeight) ? 1 : 0) + (has(self.pause) ? 1 : 0) + (has(self.analysis) ? 1 : 0) + (has(self.setCanaryScale) ? 1 : 0) == 1",message="a step sets exactly one of setWeight, pause, analysis, setCanaryScale"
type CanaryStep struct {
	// SetWeight sends this percentage of traffic to the canary. Without
	// trafficRouting the canary gets ceil(weight × spec.replicas / 100)
	// pods next to the stable ones behind the same Service.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	SetWeight *int32 `json:"setWeight,omitempty"`
	// Pause waits, for a duration or for promotion.
	// +optional
	Pause *RolloutPause `json:"pause,omitempty"`
	// Analysis runs an AnalysisRun and waits for its verdict: Successful
	// goes on, anything else aborts.
	// +optional
	Analysis *RolloutAnalysis `json:"analysis,omitempty"`
	// SetCanaryScale sets the canary's replicas apart from its weight.
	// +optional
	SetCanaryScale *SetCanaryScale `json:"setCanaryScale,omitempty"`
}

// GatewayAPIRouting splits traffic with HTTPRoute backend weights.
type GatewayAPIRouting struct {
	// HTTPRoutes (gateway.networking.k8s.io) in the Rollout's namespace
	// whose backendRefs to spec.service are split between the
	// `<service>-stable` and `<service>-canary` Services Strata manages.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	HTTPRoutes []string `json:"httpRoutes"`
}

// TrafficRouting says how traffic is split; without it, by replica ratio
// behind spec.service.
type TrafficRouting struct {
	// GatewayAPI sets weights on HTTPRoute backends.
	// +optional
	GatewayAPI *GatewayAPIRouting `json:"gatewayAPI,omitempty"`
}

// CanaryStrategy rolls a new revision out a slice at a time.
type CanaryStrategy struct {
	// Steps, in order; after the last one the canary is promoted. No step
	// promotes at once (after the canary's pods are Ready).
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Steps []CanaryStep `json:"steps,omitempty"`
	// MaxSurge caps the canary pods running beside the stable ones during
	// the steps, as a number or a percentage of spec.replicas; a step
	// asking for more is held at the cap. Defaults to 100%.
	// +optional
	// +kubebuilder:validation:XIntOrString
	MaxSurge *intstr.IntOrString `json:"maxSurge,omitempty"`
	// MaxUnavailable is how many of a step's canary pods may still be not
	// Ready when the step counts as reached (a number or a percentage of
	// the step's canary replicas). Defaults to 0: promotion waits for every
	// new pod to be Ready.
	// +optional
	// +kubebuilder:validation:XIntOrString
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`
	// Analysis runs in the background across the steps; a failure aborts.
	// +optional
	Analysis *BackgroundAnalysis `json:"analysis,omitempty"`
	// TrafficRouting splits traffic other than by replica ratio.
	// +optional
	TrafficRouting *TrafficRouting `json:"trafficRouting,omitempty"`
}

// AutoPromotion promotes a blue-green preview by itself.
type AutoPromotion struct {
	// Enabled promotes once the preview is Ready (and pre-promotion
	// analysis passed).
	// +required
	Enabled bool `json:"enabled"`
	// After waits this long after the preview is Ready.
	// +optional
	After *metav1.Duration `json:"after,omitempty"`
}

// BlueGreenStrategy runs the new revision beside the old one, reachable by
// a preview Service, and switches the active Service (spec.service) to it at
// once.
type BlueGreenStrategy struct {
	// ActiveService is spec.service; set it only to repeat it.
	// +optional
	ActiveService string `json:"activeService,omitempty"`
	// PreviewService selects the new revision's pods before promotion
	// (its selector's pod-template-hash key is set by the Rollout).
	// +optional
	PreviewService string `json:"previewService,omitempty"`
	// PreviewReplicas of the new revision before promotion; defaults to
	// spec.replicas of the Deployment.
	// +optional
	// +kubebuilder:validation:Minimum=0
	PreviewReplicas *int32 `json:"previewReplicas,omitempty"`
	// PrePromotionAnalysis must pass before the active Service switches.
	// +optional
	PrePromotionAnalysis *RolloutAnalysis `json:"prePromotionAnalysis,omitempty"`
	// PostPromotionAnalysis runs after the switch; failing switches back.
	// +optional
	PostPromotionAnalysis *RolloutAnalysis `json:"postPromotionAnalysis,omitempty"`
	// AutoPromotion switches without a promote request.
	// +optional
	AutoPromotion *AutoPromotion `json:"autoPromotion,omitempty"`
	// ScaleDownDelay keeps the old revision's pods after the switch, for a
	// fast way back; defaults to 30s.
	// +optional
	ScaleDownDelay *metav1.Duration `json:"scaleDownDelay,omitempty"`
}

// RolloutStrategy is canary or blueGreen.
// +kubebuilder:validation:XValidation:rule="(has(self.canary) ? 1 : 0) + (has(self.blueGreen) ? 1 : 0) == 1",message="set exactly one of canary, blueGreen"
type RolloutStrategy struct {
	// Canary rolls out in steps.
	// +optional
	Canary *CanaryStrategy `json:"canary,omitempty"`
	// BlueGreen switches at once after a preview.
	// +optional
	BlueGreen *BlueGreenStrategy `json:"blueGreen,omitempty"`
}

// RolloutAlertMatcher matches one label of an alert, as Alertmanager's
// matchers do (the same as a Sync's rollback.onAlerts).
type RolloutAlertMatcher struct {
	// Name of the label.
	// +required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Operator: = (equal), != (not equal), =~ (matches the RE2 regular
	// expression, anchored), !~ (does not match it).
	// +optional
	// +kubebuilder:default="="
	// +kubebuilder:validation:Enum="=";"!=";"=~";"!~"
	Operator string `json:"operator,omitempty"`
	// Value to compare with.
	// +optional
	Value string `json:"value,omitempty"`
}

// AbortOn lists what aborts a rollout besides its analyses.
type AbortOn struct {
	// Alerts: a firing alert whose labels match every matcher, posted to a
	// Receiver (notification.strata.dev) of the Rollout's namespace, aborts
	// the rollout in progress.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Alerts []RolloutAlertMatcher `json:"alerts,omitempty"`
}

// RolloutSpec is what to roll out and how.
// +kubebuilder:validation:XValidation:rule="!has(self.strategy.blueGreen) || !has(self.strategy.blueGreen.activeService) || self.strategy.blueGreen.activeService == self.service",message="strategy.blueGreen.activeService must equal spec.service"
// +kubebuilder:validation:XValidation:rule="!has(self.strategy.blueGreen) || !has(self.strategy.blueGreen.previewService) || self.strategy.blueGreen.previewService != self.service",message="strategy.blueGreen.previewService must differ from spec.service"
type RolloutSpec struct {
	// TargetRef is the user's Deployment in the Rollout's namespace. It stays
	// as Git says: same name, labels and Service; the Rollout only keeps it
	// paused and adds RolloutAnnotation.
	// +required
	TargetRef RolloutTargetReference `json:"targetRef"`
	// Service users reach (in the Rollout's namespace); it must select the
	// Deployment's pods.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Service string `json:"service"`
	// Strategy: canary or blueGreen.
	// +required
	Strategy RolloutStrategy `json:"strategy"`
	// ProgressDeadline is how long a step may wait for the new pods to be
	// Ready before the rollout aborts; defaults to 10m.
	// +optional
	ProgressDeadline *metav1.Duration `json:"progressDeadline,omitempty"`
	// AbortOn aborts the rollout on firing alerts.
	// +optional
	AbortOn *AbortOn `json:"abortOn,omitempty"`
	// ServiceAccountName in the Rollout's namespace whose rights the
	// Rollout acts with (Deployments, ReplicaSets, Services, HTTPRoutes,
	// AnalysisRuns); defaults to the manager's --default-service-account.
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
}

// RevisionInfo names one revision of the Deployment's pod template.
type RevisionInfo struct {
	// PodTemplateHash is the pod-template-hash label of its pods.
	// +optional
	PodTemplateHash string `json:"podTemplateHash,omitempty"`
	// GitRevision that brought it (GitRevisionAnnotation), when known.
	// +optional
	GitRevision string `json:"gitRevision,omitempty"`
}

// RolloutAnalysisRunStatus is one AnalysisRun of the current rollout.
type RolloutAnalysisRunStatus struct {
	// Name of the AnalysisRun.
	// +required
	Name string `json:"name"`
	// Step index it gates, or -1 for background, pre- or post-promotion.
	// +optional
	Step int32 `json:"step,omitempty"`
	// Kind: Step, Background, PrePromotion or PostPromotion.
	// +required
	Kind string `json:"kind"`
	// Phase of the run.
	// +optional
	Phase string `json:"phase,omitempty"`
	// Message of the run's verdict.
	// +optional
	Message string `json:"message,omitempty"`
}

// Kinds of RolloutAnalysisRunStatus.
const (
	AnalysisKindStep          = "Step"
	AnalysisKindBackground    = "Background"
	AnalysisKindPrePromotion  = "PrePromotion"
	AnalysisKindPostPromotion = "PostPromotion"
)

// AbortStatus records an aborted rollout.
type AbortStatus struct {
	// Revision that was aborted.
	// +required
	Revision RevisionInfo `json:"revision"`
	// Stable revision traffic went back to.
	// +optional
	Stable RevisionInfo `json:"stable,omitempty"`
	// Reason: AnalysisFailed, ProgressDeadlineExceeded, AbortRequested or
	// AlertFired.
	// +required
	Reason string `json:"reason"`
	// Message says why, naming the run, metric, alert or step.
	// +optional
	Message string `json:"message,omitempty"`
	// At is when it was aborted.
	// +required
	At metav1.Time `json:"at"`
}

// HandledRequests are the tokens of the request annotations last acted on.
type HandledRequests struct {
	// +optional
	Promote string `json:"promote,omitempty"`
	// +optional
	PromoteFull string `json:"promoteFull,omitempty"`
	// +optional
	Abort string `json:"abort,omitempty"`
	// +optional
	Retry string `json:"retry,omitempty"`
	// +optional
	AbortAlert string `json:"abortAlert,omitempty"`
}

// RolloutStatus is where the rollout stands.
type RolloutStatus struct {
	// ObservedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, Reconciling, Stalled, Paused.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Phase: Healthy, Progressing, Paused, Aborted or Degraded.
	// +optional
	Phase string `json:"phase,omitempty"`
	// Message says what the Rollout does or waits for.
	// +optional
	Message string `json:"message,omitempty"`
	// Strategy in use: Canary or BlueGreen (for printing).
	// +optional
	Strategy string `json:"strategy,omitempty"`
	// StableRevision serves traffic when no rollout is in progress.
	// +optional
	StableRevision *RevisionInfo `json:"stableRevision,omitempty"`
	// CanaryRevision is being rolled out (the preview, in blue-green).
	// +optional
	CanaryRevision *RevisionInfo `json:"canaryRevision,omitempty"`
	// CurrentStep is the index of the step in progress; equal to the number
	// of steps once promoted.
	// +optional
	CurrentStep *int32 `json:"currentStep,omitempty"`
	// StepStartedAt is when the current step began (pause and progress
	// deadline count from it).
	// +optional
	StepStartedAt *metav1.Time `json:"stepStartedAt,omitempty"`
	// Weight is the canary's weight from the last setWeight step reached
	// (100 at promotion and, in blue-green, once the active Service
	// switched; 0 when there is no canary: once the promoted revision is
	// stable, or after an abort).
	// With trafficRouting it is the canary's share of the route; without,
	// the canary runs that percentage of spec.replicas beside the stable
	// pods, and its share of the Service's endpoints is
	// canaryReplicas / (canaryReplicas + stableReplicas).
	// +optional
	Weight int32 `json:"weight,omitempty"`
	// CanaryReplicas the canary ReplicaSet is scaled to.
	// +optional
	CanaryReplicas int32 `json:"canaryReplicas,omitempty"`
	// ReadyCanaryReplicas of it.
	// +optional
	ReadyCanaryReplicas int32 `json:"readyCanaryReplicas,omitempty"`
	// StableReplicas of the stable revision.
	// +optional
	StableReplicas int32 `json:"stableReplicas,omitempty"`
	// AnalysisRuns of the current rollout.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	AnalysisRuns []RolloutAnalysisRunStatus `json:"analysisRuns,omitempty"`
	// Aborted is set while the canary revision stays aborted.
	// +optional
	Aborted *AbortStatus `json:"aborted,omitempty"`
	// Attempt counts retries of the canary revision (RetryAnnotation); it
	// is part of the names of the AnalysisRuns of each attempt.
	// +optional
	Attempt int32 `json:"attempt,omitempty"`
	// PromotedAt is when blue-green switched the active Service (scale
	// down delay and post-promotion analysis count from it).
	// +optional
	PromotedAt *metav1.Time `json:"promotedAt,omitempty"`
	// HandledRequests are the request tokens already acted on.
	// +optional
	HandledRequests HandledRequests `json:"handledRequests,omitempty"`
}

// Rollout rolls a new revision of a Deployment out a slice at a time
// (canary) or behind a preview (blue-green), gated by analyses, and takes
// every pod back to the stable revision when a check fails.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=strata
// +kubebuilder:printcolumn:name="STRATEGY",type=string,JSONPath=`.status.strategy`
// +kubebuilder:printcolumn:name="STEP",type=integer,JSONPath=`.status.currentStep`
// +kubebuilder:printcolumn:name="WEIGHT",type=integer,JSONPath=`.status.weight`
// +kubebuilder:printcolumn:name="STABLE",type=string,JSONPath=`.status.stableRevision.podTemplateHash`
// +kubebuilder:printcolumn:name="CANARY",type=string,JSONPath=`.status.canaryRevision.podTemplateHash`
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type Rollout struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec RolloutSpec `json:"spec"`
	// +optional
	Status RolloutStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions for internal/conditions.
func (r *Rollout) GetConditions() *[]metav1.Condition { return &r.Status.Conditions }

// +kubebuilder:object:root=true

// RolloutList is a list of Rollouts.
type RolloutList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Rollout `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Rollout{}, &RolloutList{})
}

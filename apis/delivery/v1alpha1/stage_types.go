package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Stage reasons (condition Ready unless said otherwise). A Stage is
// Ready=True when its current revision is verified and nothing waits;
// Ready=False with one of the waiting reasons while a promotion waits, and
// Stalled=True with a user-error reason when only the user can fix it.
const (
	// ReasonStageReady: the current revision is deployed and verified and no
	// promotion waits.
	ReasonStageReady = "Ready"
	// ReasonAwaitingApproval: a promotion waits for approvals; the message
	// names the revision, its verification run, how long it has soaked and
	// how many approvals it has and needs.
	ReasonAwaitingApproval = "AwaitingApproval"
	// ReasonAwaitingSoak: a promotion waits until the revision has been
	// verified upstream for spec.promotion.requiredSoakTime; the message
	// names the moment the soak ends.
	ReasonAwaitingSoak = "AwaitingSoak"
	// ReasonAwaitingWindow: a deny window is open (or no allow window is);
	// the message names the window and when it closes.
	ReasonAwaitingWindow = "AwaitingWindow"
	// ReasonAwaitingVerification: the revision is deployed in this stage and
	// its verification (the Sync's spec.verify or the Stage's own
	// verification) is running.
	ReasonAwaitingVerification = "AwaitingVerification"
	// ReasonPromoting: the revision is being written (pin or write-back) and
	// the stage's Sync has not applied it yet.
	ReasonPromoting = "Promoting"
	// ReasonVerificationFailed: the current revision failed its
	// verification in this stage; it is withdrawn and the stage rolled back
	// to its previous verified revision (the message names both).
	ReasonVerificationFailed = "VerificationFailed"
	// ReasonRevisionRejected: the pending revision was rejected by an
	// Approval; it will not be promoted to this stage.
	ReasonRevisionRejected = "RevisionRejected"
	// ReasonSourceNotReady: the upstream stage or GitRepository has no
	// verified revision yet, or cannot be read.
	ReasonSourceNotReady = "SourceNotReady"
	// ReasonSyncNotFound: spec.syncRef names no Sync in the Stage's
	// namespace.
	ReasonSyncNotFound = "SyncNotFound"
	// ReasonInvalidSpec: a field cannot be used (a cron schedule that does
	// not parse, an unknown time zone, a write-back path outside the
	// repository); Stalled=True, the message names the field.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonAccessDenied: the Stage's service account may not read the
	// source stage, the Sync or the GitRepository, or may not change the
	// GitRepository; the message names the object and verb.
	ReasonAccessDenied = "AccessDenied"
	// ReasonPromotionFailed: the promotion could not be written (push
	// refused, credentials missing); retried.
	ReasonPromotionFailed = "PromotionFailed"
)

// Event reasons of Stage.
const (
	EventPromoted          = "Promoted"
	EventPromotionStarted  = "PromotionStarted"
	EventRevisionVerified  = "RevisionVerified"
	EventRevisionWithdrawn = "RevisionWithdrawn"
	EventRolledBack        = "RolledBack"
	EventWindowOverridden  = "WindowOverridden"
	EventApprovalIgnored   = "ApprovalIgnored"
	EventRevisionRejected  = "RevisionRejected"
)

// What a pending promotion waits for (status.pending.waitingFor).
const (
	WaitingForApproval     = "Approval"
	WaitingForWindow       = "Window"
	WaitingForSoak         = "Soak"
	WaitingForVerification = "Verification"
)

// Promotion modes.
const (
	// PromotionModePin sets the stage's GitRepository spec.ref.commit.
	PromotionModePin = "pin"
	// PromotionModeGitWriteBack commits the change to the environment's
	// branch or path and pushes it.
	PromotionModeGitWriteBack = "gitWriteBack"
)

// Window kinds.
const (
	WindowAllow = "allow"
	WindowDeny  = "deny"
)

// LabelStage is set on AnalysisRuns and Promotions Strata creates for a
// Stage, to the Stage's name.
const LabelStage = "delivery.strata.dev/stage"

// AnnotationReverify, set on a Stage to any new value (a time), runs the
// stage's own verification (spec.verification) of its current revision
// again; a failure withdraws the revision from verifiedRevisions.
const AnnotationReverify = "delivery.strata.dev/reverify-requested-at"

// StageSource is where a stage's candidate revisions come from: the
// revisions of a GitRepository (the first stage), or the revisions verified
// by another stage. Set exactly one of gitRepository and stage.
// +kubebuilder:validation:XValidation:rule="(has(self.gitRepository) ? 1 : 0) + (has(self.stage) ? 1 : 0) == 1",message="set exactly one of gitRepository and stage"
// +kubebuilder:validation:XValidation:rule="!has(self.namespace) || has(self.stage)",message="namespace only applies to stage"
type StageSource struct {
	// GitRepository in the Stage's namespace whose artifact revision is the
	// candidate. When it is the one the stage's Sync deploys, the stage
	// follows it and nothing is promoted into it.
	// +optional
	// +kubebuilder:validation:MinLength=1
	GitRepository string `json:"gitRepository,omitempty"`
	// Stage whose verified revisions are the candidates.
	// +optional
	// +kubebuilder:validation:MinLength=1
	Stage string `json:"stage,omitempty"`
	// Namespace of the source stage; defaults to the Stage's. The Stage's
	// service account must be allowed to get stages there.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// ImageTagChange sets an image's tag in a kustomization.yaml
// (`images[].newTag`) to the promoted revision or to a fixed value.
type ImageTagChange struct {
	// Kustomization is the path of the kustomization.yaml in the repository.
	// +required
	// +kubebuilder:validation:MinLength=1
	Kustomization string `json:"kustomization"`
	// Image is the `images[].name` to set.
	// +required
	// +kubebuilder:validation:MinLength=1
	Image string `json:"image"`
	// Tag to set; `{{revision}}` (the full commit SHA) and
	// `{{shortRevision}}` (its first 7 characters) are substituted.
	// Defaults to `{{revision}}`.
	// +optional
	Tag string `json:"tag,omitempty"`
}

// CopyChange copies a path of the promoted revision (the staging path) to
// the environment's path, replacing what is there.
type CopyChange struct {
	// From is the path in the promoted revision (file or folder).
	// +required
	// +kubebuilder:validation:MinLength=1
	From string `json:"from"`
	// To is the path in the environment branch.
	// +required
	// +kubebuilder:validation:MinLength=1
	To string `json:"to"`
}

// GitAuthor signs the write-back commits.
type GitAuthor struct {
	// Name of the author.
	// +required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Email of the author.
	// +required
	// +kubebuilder:validation:MinLength=3
	Email string `json:"email"`
}

// WriteBack says where and what Strata commits for a gitWriteBack
// promotion. It uses the source GitRepository's URL and credentials (the
// stage's Sync's GitRepository, which must follow `branch`).
// +kubebuilder:validation:XValidation:rule="(has(self.imageTag) ? 1 : 0) + (has(self.copy) ? 1 : 0) == 1",message="set exactly one of imageTag and copy"
type WriteBack struct {
	// Branch to commit to and push.
	// +required
	// +kubebuilder:validation:MinLength=1
	Branch string `json:"branch"`
	// ImageTag sets an image tag in a kustomization.
	// +optional
	ImageTag *ImageTagChange `json:"imageTag,omitempty"`
	// Copy copies the staging path of the promoted revision.
	// +optional
	Copy *CopyChange `json:"copy,omitempty"`
	// Author of the commits.
	// +required
	Author GitAuthor `json:"author"`
	// SignOff adds a `Signed-off-by:` trailer with the author.
	// +optional
	SignOff bool `json:"signOff,omitempty"`
}

// PromotionWindow is a recurring period during which promotions are
// allowed or denied.
type PromotionWindow struct {
	// Kind is allow or deny. A deny window blocks automatic and approved
	// promotions alike while open; when any allow window exists, promotions
	// happen only while one is open.
	// +required
	// +kubebuilder:validation:Enum=allow;deny
	Kind string `json:"kind"`
	// Schedule is a five-field cron expression of when the window opens.
	// +required
	// +kubebuilder:validation:MinLength=1
	Schedule string `json:"schedule"`
	// Duration the window stays open.
	// +required
	Duration metav1.Duration `json:"duration"`
	// TimeZone of the schedule (IANA name); defaults to UTC.
	// +optional
	TimeZone string `json:"timeZone,omitempty"`
}

// Approvers are who may approve a promotion into the stage.
type Approvers struct {
	// Users by username.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Users []string `json:"users,omitempty"`
	// Groups whose members may approve.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Groups []string `json:"groups,omitempty"`
}

// ApprovalPolicy is the approval gate of a stage.
type ApprovalPolicy struct {
	// Required makes every promotion wait for approvals.
	// +optional
	Required bool `json:"required,omitempty"`
	// Approvers whose Approvals count; empty means anyone RBAC lets create
	// Approvals.
	// +optional
	Approvers Approvers `json:"approvers,omitempty"`
	// MinApprovals is how many distinct approvers must approve.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	MinApprovals int32 `json:"minApprovals,omitempty"`
	// AllowSelfApproval lets the author of the commit (when known) approve
	// alone; by default (four-eyes) someone else must approve too.
	// +optional
	AllowSelfApproval bool `json:"allowSelfApproval,omitempty"`
}

// PromotionPolicy is how revisions enter the stage.
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'gitWriteBack' || has(self.writeBack)",message="mode gitWriteBack needs writeBack"
type PromotionPolicy struct {
	// Mode is pin (set the stage's GitRepository spec.ref.commit) or
	// gitWriteBack (commit and push to the environment).
	// +optional
	// +kubebuilder:default=pin
	// +kubebuilder:validation:Enum=pin;gitWriteBack
	Mode string `json:"mode,omitempty"`
	// WriteBack details for mode gitWriteBack.
	// +optional
	WriteBack *WriteBack `json:"writeBack,omitempty"`
	// Auto promotes every revision verified upstream; without it a person
	// creates a Promotion.
	// +optional
	Auto bool `json:"auto,omitempty"`
	// RequiredSoakTime is how long a revision must have been verified (and
	// stayed verified) upstream before it is promoted.
	// +optional
	RequiredSoakTime *metav1.Duration `json:"requiredSoakTime,omitempty"`
	// SupersedePending lets a newer verified revision replace a pending one
	// that has not been approved yet (its soak restarts). By default a
	// pending revision stays pending until promoted, rejected or withdrawn.
	// +optional
	SupersedePending bool `json:"supersedePending,omitempty"`
	// Windows when promotions are allowed or denied; the Pipeline's
	// defaults apply when empty.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Windows []PromotionWindow `json:"windows,omitempty"`
	// Approval gate; the Pipeline's default applies when unset.
	// +optional
	Approval *ApprovalPolicy `json:"approval,omitempty"`
}

// StageVerification runs an analysis in the Stage's namespace once the
// stage's Sync has applied a revision and is healthy. Without it (and
// without the Sync's spec.verify), a revision is verified when the Sync has
// applied it and is Ready.
type StageVerification struct {
	// Templates of the analysis.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Templates []TemplateRef `json:"templates"`
	// Args given to the templates; the run also gets `revision` (the commit
	// SHA) and `stage` unless set here.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Args []Argument `json:"args,omitempty"`
}

// StageSpec is one environment of a pipeline.
type StageSpec struct {
	// Pipeline this stage belongs to (a Pipeline in the same namespace); it
	// groups stages for display and gives defaults.
	// +optional
	Pipeline string `json:"pipeline,omitempty"`
	// SyncRef is the Sync, in the Stage's namespace, that deploys this
	// stage.
	// +required
	SyncRef LocalReference `json:"syncRef"`
	// Source of candidate revisions.
	// +required
	Source StageSource `json:"source"`
	// Promotion policy.
	// +optional
	Promotion PromotionPolicy `json:"promotion,omitempty"`
	// Verification of each revision in this stage, besides the Sync's own.
	// +optional
	Verification *StageVerification `json:"verification,omitempty"`
	// ServiceAccountName in the Stage's namespace whose rights Strata uses
	// to read the source stage and to change the GitRepository; defaults to
	// the Sync's service account, then the manager's default.
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// Suspend stops promotions; verification is still observed.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// VerifiedRevision is a revision verified in the stage.
type VerifiedRevision struct {
	// Revision is the commit SHA.
	// +required
	Revision string `json:"revision"`
	// VerifiedAt is when its verification succeeded; soak counts from it.
	// +required
	VerifiedAt metav1.Time `json:"verifiedAt"`
	// Run is the AnalysisRun that verified it (empty when the stage has no
	// verification and the Sync being Ready verified it).
	// +optional
	Run string `json:"run,omitempty"`
	// Author of the commit, when known (the email), for the four-eyes rule.
	// +optional
	Author string `json:"author,omitempty"`
}

// PendingPromotion is what the stage waits for before the next revision
// enters it.
type PendingPromotion struct {
	// Revision waiting.
	// +required
	Revision string `json:"revision"`
	// Promotion is the Promotion object carrying it.
	// +optional
	Promotion string `json:"promotion,omitempty"`
	// WaitingFor is Approval, Window, Soak or Verification.
	// +required
	// +kubebuilder:validation:Enum=Approval;Window;Soak;Verification
	WaitingFor string `json:"waitingFor"`
	// Since is when it started waiting for this.
	// +required
	Since metav1.Time `json:"since"`
	// Until is when the wait ends by itself (soak end, window close), if
	// known.
	// +optional
	Until *metav1.Time `json:"until,omitempty"`
	// Run is the upstream verification run of the revision.
	// +optional
	Run string `json:"run,omitempty"`
	// Message explains the wait.
	// +optional
	Message string `json:"message,omitempty"`
}

// StageHistoryEntry is one promotion into the stage, or a rollback.
type StageHistoryEntry struct {
	// Revision promoted (the source commit SHA).
	// +required
	Revision string `json:"revision"`
	// Promotion object that carried it.
	// +optional
	Promotion string `json:"promotion,omitempty"`
	// Result: Promoted, RolledBack (to this revision, after the next one
	// failed its verification here) or Withdrawn (no longer verified).
	// +required
	Result string `json:"result"`
	// Time of the result.
	// +required
	Time metav1.Time `json:"time"`
	// Commit pushed by write-back (the environment's commit), if any.
	// +optional
	Commit string `json:"commit,omitempty"`
	// ApprovedBy lists the approvers counted, sorted.
	// +optional
	ApprovedBy []string `json:"approvedBy,omitempty"`
	// OverriddenBy names who overrode a deny window for it.
	// +optional
	OverriddenBy string `json:"overriddenBy,omitempty"`
	// Message, e.g. the rollback's cause.
	// +optional
	Message string `json:"message,omitempty"`
}

// InFlightPromotion is a promotion whose write has started; a restart
// resumes it instead of starting another.
type InFlightPromotion struct {
	// Promotion object.
	// +required
	Promotion string `json:"promotion"`
	// Revision being written.
	// +required
	Revision string `json:"revision"`
	// StartedAt is when the write started.
	// +required
	StartedAt metav1.Time `json:"startedAt"`
	// Commit pushed by write-back, once pushed.
	// +optional
	Commit string `json:"commit,omitempty"`
}

// StageStatus is the observed state of a Stage.
type StageStatus struct {
	// ObservedGeneration is the generation last reconciled successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, Reconciling, Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Pipeline copied from spec.pipeline, for the printer column.
	// +optional
	Pipeline string `json:"pipeline,omitempty"`
	// CurrentRevision is the source commit SHA the stage's Sync applies.
	// +optional
	CurrentRevision string `json:"currentRevision,omitempty"`
	// LastVerifiedRevision is the newest verified revision (shortened in
	// the printer column).
	// +optional
	LastVerifiedRevision string `json:"lastVerifiedRevision,omitempty"`
	// VerifiedRevisions, newest first (at most 20).
	// +optional
	// +kubebuilder:validation:MaxItems=20
	VerifiedRevisions []VerifiedRevision `json:"verifiedRevisions,omitempty"`
	// Pending is the promotion waiting, if any.
	// +optional
	Pending *PendingPromotion `json:"pending,omitempty"`
	// InFlight is the promotion being written.
	// +optional
	InFlight *InFlightPromotion `json:"inFlight,omitempty"`
	// Verification is the stage's own AnalysisRun of its current revision.
	// +optional
	Verification *StageVerificationStatus `json:"verification,omitempty"`
	// LastHandledReverifyAt is the last handled value of the
	// delivery.strata.dev/reverify-requested-at annotation.
	// +optional
	LastHandledReverifyAt string `json:"lastHandledReverifyAt,omitempty"`
	// History of promotions and rollbacks, newest first (at most 20).
	// +optional
	// +kubebuilder:validation:MaxItems=20
	History []StageHistoryEntry `json:"history,omitempty"`
}

// StageVerificationStatus is the stage's own run for a revision.
type StageVerificationStatus struct {
	// Revision verified.
	// +required
	Revision string `json:"revision"`
	// Run is the AnalysisRun's name.
	// +required
	Run string `json:"run"`
	// Phase of the run.
	// +optional
	Phase string `json:"phase,omitempty"`
}

// Stage is one environment of a promotion pipeline: which Sync deploys it,
// where its revisions come from, and the gates a revision passes to enter
// it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=strata
// +kubebuilder:printcolumn:name="PIPELINE",type=string,JSONPath=`.spec.pipeline`
// +kubebuilder:printcolumn:name="REVISION",type=string,JSONPath=`.status.currentRevision`
// +kubebuilder:printcolumn:name="VERIFIED",type=string,JSONPath=`.status.lastVerifiedRevision`
// +kubebuilder:printcolumn:name="PENDING",type=string,JSONPath=`.status.pending.waitingFor`
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type Stage struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec StageSpec `json:"spec"`
	// +optional
	Status StageStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions.
func (s *Stage) GetConditions() *[]metav1.Condition { return &s.Status.Conditions }

// +kubebuilder:object:root=true

// StageList is a list of Stages.
type StageList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Stage `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Stage{}, &StageList{})
}

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Provider types.
const (
	// ProviderGeneric posts the event as JSON (the documented event schema).
	ProviderGeneric = "generic"
	// ProviderGenericHMAC posts the same JSON signed with the Secret's
	// token: X-Signature: sha256=<hex HMAC-SHA256 of the body>.
	ProviderGenericHMAC = "generic-hmac"
	// ProviderSlack posts a Slack incoming-webhook message.
	ProviderSlack = "slack"
	// ProviderMSTeams posts a Microsoft Teams (Workflows) adaptive card.
	ProviderMSTeams = "msteams"
	// ProviderAlertmanager posts an alert to Alertmanager's v2 API.
	ProviderAlertmanager = "alertmanager"
	// ProviderGitHubStatus sets a GitHub commit status on the event's revision.
	ProviderGitHubStatus = "github-status"
	// ProviderGitLabStatus sets a GitLab commit status on the event's revision.
	ProviderGitLabStatus = "gitlab-status"
)

// Proxy settings of a Provider.
const (
	// ProxyOff connects directly, ignoring HTTP(S)_PROXY (the default).
	ProxyOff = "off"
	// ProxyEnvironment uses the manager's HTTP_PROXY/HTTPS_PROXY/NO_PROXY.
	ProxyEnvironment = "environment"
)

// SecretReference names a Secret. It may only name the referring object's
// own namespace; any other is refused (reason CrossNamespaceRefNotAllowed).
type SecretReference struct {
	// Name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Namespace of the Secret; empty or the referring object's own. Other
	// namespaces are refused.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// ProviderSpec is where messages go.
type ProviderSpec struct {
	// Type of the endpoint.
	// +required
	// +kubebuilder:validation:Enum=generic;generic-hmac;slack;msteams;alertmanager;github-status;gitlab-status
	Type string `json:"type"`
	// Address of the endpoint: the webhook URL (generic, slack, msteams),
	// Alertmanager's base URL, or the repository's URL for commit statuses
	// (https://github.com/org/repo, https://gitlab.example.com/group/repo).
	// An `address` key in secretRef overrides it, so a webhook URL that is a
	// credential can stay in a Secret.
	// +optional
	// +kubebuilder:validation:Pattern=`^https?://.+`
	Address string `json:"address,omitempty"`
	// Channel for Slack (overrides the webhook's default channel).
	// +optional
	Channel string `json:"channel,omitempty"`
	// SecretRef names a Secret in the Provider's namespace with the keys
	// `address` (overrides spec.address) and `token` (the HMAC key of
	// generic-hmac, a bearer token for slack/alertmanager/generic, the API
	// token for github-status and gitlab-status).
	// +optional
	SecretRef *SecretReference `json:"secretRef,omitempty"`
	// CertSecretRef names a Secret in the Provider's namespace whose
	// `ca.crt` is the CA that signs the endpoint's certificate.
	// +optional
	CertSecretRef *SecretReference `json:"certSecretRef,omitempty"`
	// Timeout of one delivery.
	// +optional
	// +kubebuilder:default="15s"
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// Proxy: off (direct connections, the default) or environment (the
	// manager's HTTP_PROXY/HTTPS_PROXY/NO_PROXY).
	// +optional
	// +kubebuilder:default=off
	// +kubebuilder:validation:Enum=off;environment
	Proxy string `json:"proxy,omitempty"`
	// Suspend stops deliveries through this Provider; Alerts keep their
	// cursor and deliver what they missed when it resumes.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// ProviderStatus is the observed state of a Provider.
type ProviderStatus struct {
	// ObservedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, Reconciling, Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Provider is an endpoint that Alerts send messages to.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=strata
// +kubebuilder:printcolumn:name="TYPE",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="READY",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="STATUS",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="AGE",type=date,JSONPath=`.metadata.creationTimestamp`
type Provider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec ProviderSpec `json:"spec"`
	// +optional
	Status ProviderStatus `json:"status,omitempty"`
}

// GetConditions returns the conditions for internal/conditions.
func (p *Provider) GetConditions() *[]metav1.Condition { return &p.Status.Conditions }

// +kubebuilder:object:root=true

// ProviderList is a list of Providers.
type ProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Provider `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Provider{}, &ProviderList{})
}

package install

import (
	"fmt"
	"maps"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/strata-dev/strata/apis/crds"
)

// Names of what `strata install` creates.
const (
	DefaultNamespace = "strata-system"
	DefaultRegistry  = "ghcr.io/strata-dev"
	ManagerName      = "strata-manager"
	ServiceAccount   = "strata-manager"
	MetricsService   = "strata-metrics"
	WebhookService   = "strata-webhook-receiver"
	// LeaseName is the manager's leader election lease (internal/manager).
	LeaseName = "strata-manager.strata.dev"
	// PartOfLabel marks every object of the install, so uninstall finds them.
	PartOfLabel = "app.kubernetes.io/part-of"
	partOf      = "strata"

	webhookPort = 9292
	metricsPort = 8080
	probePort   = 8081
)

// managerSelector selects the manager's pods.
var managerSelector = map[string]string{"app.kubernetes.io/name": "strata", "app.kubernetes.io/component": "manager"}

// Options say what to install.
type Options struct {
	// Namespace of the manager (default strata-system).
	Namespace string
	// Image of the manager; default <Registry>/strata:<Version>.
	Image string
	// Registry the image comes from when Image is empty.
	Registry string
	// Version is the image tag and the app.kubernetes.io/version label.
	Version string
	// Subsystems the manager runs (default: every one in SubsystemRules);
	// only their RBAC is installed.
	Subsystems []string
	// Replicas of the manager (default 2, with leader election).
	Replicas int32
	// Lockdown leaves out the full-rights ClusterRole aggregated into
	// strata:reconciler (see rbac.go).
	Lockdown bool
}

func (o *Options) defaults() error {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Registry == "" {
		o.Registry = DefaultRegistry
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Image == "" {
		o.Image = strings.TrimSuffix(o.Registry, "/") + "/strata:" + o.Version
	}
	if o.Replicas == 0 {
		o.Replicas = 2
	}
	if len(o.Subsystems) == 0 {
		o.Subsystems = SubsystemNames()
	}
	for _, s := range o.Subsystems {
		if _, ok := SubsystemRules[s]; !ok {
			return fmt.Errorf("unknown subsystem %q (known: %s)", s, strings.Join(SubsystemNames(), ", "))
		}
	}
	return nil
}

// SubsystemNames are the subsystems install knows the RBAC of, sorted.
func SubsystemNames() []string {
	var n []string
	for k := range SubsystemRules {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Objects returns everything `strata install` applies, in apply order:
// namespace, CRDs, ServiceAccount and RBAC, then the manager, its Services,
// PodDisruptionBudget and NetworkPolicy.
func Objects(o Options) ([]*unstructured.Unstructured, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	labels := func(extra map[string]string) map[string]string {
		l := map[string]string{PartOfLabel: partOf, "app.kubernetes.io/managed-by": "strata-install"}
		for k, v := range extra {
			l[k] = v
		}
		return l
	}
	meta := func(name string, extra map[string]string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Labels: labels(extra)}
	}
	nsMeta := func(name string, extra map[string]string) metav1.ObjectMeta {
		m := meta(name, extra)
		m.Namespace = o.Namespace
		return m
	}
	var objs []runtime.Object
	add := func(gvk schema.GroupVersionKind, obj runtime.Object) {
		obj.GetObjectKind().SetGroupVersionKind(gvk)
		objs = append(objs, obj)
	}
	rbac := rbacv1.SchemeGroupVersion.WithKind

	// Namespace with the restricted Pod Security Standard.
	add(corev1.SchemeGroupVersion.WithKind("Namespace"), &corev1.Namespace{ObjectMeta: meta(o.Namespace, map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
	})})
	list, err := crds.All()
	if err != nil {
		return nil, err
	}
	for _, c := range list {
		c = c.DeepCopy()
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		c.Labels[PartOfLabel] = partOf
		add(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}, c)
	}
	add(corev1.SchemeGroupVersion.WithKind("ServiceAccount"), &corev1.ServiceAccount{ObjectMeta: nsMeta(ServiceAccount, nil)})
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: ServiceAccount, Namespace: o.Namespace}}
	bind := func(role string) {
		add(rbac("ClusterRoleBinding"), &rbacv1.ClusterRoleBinding{ObjectMeta: meta(role, nil),
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}, Subjects: subject})
	}
	add(rbac("ClusterRole"), &rbacv1.ClusterRole{ObjectMeta: meta("strata:manager", nil), Rules: commonRules})
	bind("strata:manager")
	for _, s := range o.Subsystems {
		name := "strata:" + s
		add(rbac("ClusterRole"), &rbacv1.ClusterRole{ObjectMeta: meta(name, map[string]string{"strata.dev/subsystem": s}), Rules: SubsystemRules[s]})
		bind(name)
	}
	add(rbac("ClusterRole"), &rbacv1.ClusterRole{ObjectMeta: meta("strata:reconciler", nil),
		AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{ReconcilerAggregationLabel: "true"}}}}})
	bind("strata:reconciler")
	if !o.Lockdown {
		add(rbac("ClusterRole"), &rbacv1.ClusterRole{ObjectMeta: meta("strata:reconciler:cluster-admin", map[string]string{ReconcilerAggregationLabel: "true"}),
			Rules: []rbacv1.PolicyRule{
				rule(strs("*"), strs("*"), allVerbs),
				{NonResourceURLs: strs("*"), Verbs: allVerbs},
			}})
	}
	add(rbac("Role"), &rbacv1.Role{ObjectMeta: nsMeta("strata:leader-election", nil), Rules: leaderElectionRules})
	add(rbac("RoleBinding"), &rbacv1.RoleBinding{ObjectMeta: nsMeta("strata:leader-election", nil),
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "strata:leader-election"}, Subjects: subject})
	roles := userRoles(list)
	for _, level := range []string{"view", "edit", "admin"} {
		add(rbac("ClusterRole"), &rbacv1.ClusterRole{ObjectMeta: meta("strata-"+level, map[string]string{
			"rbac.authorization.k8s.io/aggregate-to-" + level: "true",
		}), Rules: roles[level]})
	}
	// Promotion approvals: admission policies and the approver roles (admission.go).
	for _, obj := range append(admissionObjects(meta), promotionRoles(meta)...) {
		add(obj.GetObjectKind().GroupVersionKind(), obj)
	}

	// The manager.
	selector := maps.Clone(managerSelector)
	podLabels := labels(selector)
	podLabels["app.kubernetes.io/version"] = o.Version
	args := []string{"manager", "--leader-elect", "--leader-election-namespace=" + o.Namespace,
		fmt.Sprintf("--metrics-bind-address=:%d", metricsPort), fmt.Sprintf("--health-probe-bind-address=:%d", probePort),
		fmt.Sprintf("--webhook-bind-address=:%d", webhookPort)}
	if len(o.Subsystems) != len(SubsystemRules) {
		args = append(args, "--subsystems="+strings.Join(o.Subsystems, ","))
	}
	f, t := false, true
	uid := int64(65532)
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("probes")}},
			PeriodSeconds: 10, TimeoutSeconds: 5}
	}
	dep := &appsv1.Deployment{ObjectMeta: nsMeta(ManagerName, map[string]string{"app.kubernetes.io/version": o.Version}),
		Spec: appsv1.DeploymentSpec{
			Replicas: &o.Replicas,
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{
					ServiceAccountName: ServiceAccount,
					SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: &t, RunAsUser: &uid, RunAsGroup: &uid, FSGroup: &uid,
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{{
						Name: "manager", Image: o.Image, Args: args,
						Env: []corev1.EnvVar{{Name: "TMPDIR", Value: "/tmp"}},
						Ports: []corev1.ContainerPort{
							{Name: "metrics", ContainerPort: metricsPort}, {Name: "probes", ContainerPort: probePort}, {Name: "webhook", ContainerPort: webhookPort},
						},
						LivenessProbe: probe("/healthz"), ReadinessProbe: probe("/readyz"),
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
						},
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &f, ReadOnlyRootFilesystem: &t, RunAsNonRoot: &t,
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
						VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
					}},
					Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				},
			},
		}}
	add(appsv1.SchemeGroupVersion.WithKind("Deployment"), dep)
	svc := func(name, port string, number int32) *corev1.Service {
		return &corev1.Service{ObjectMeta: nsMeta(name, nil), Spec: corev1.ServiceSpec{Selector: selector,
			Ports: []corev1.ServicePort{{Name: port, Port: number, TargetPort: intstr.FromString(port)}}}}
	}
	add(corev1.SchemeGroupVersion.WithKind("Service"), svc(MetricsService, "metrics", metricsPort))
	add(corev1.SchemeGroupVersion.WithKind("Service"), svc(WebhookService, "webhook", 80))
	one := intstr.FromInt32(1)
	add(policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget"), &policyv1.PodDisruptionBudget{ObjectMeta: nsMeta(ManagerName, nil),
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: selector}}})
	tcp := corev1.ProtocolTCP
	port := func(n string) networkingv1.NetworkPolicyPort {
		p := intstr.FromString(n)
		return networkingv1.NetworkPolicyPort{Protocol: &tcp, Port: &p}
	}
	// Ingress only to the webhook receiver, metrics and probes; egress is
	// open (the API server, Git hosts, databases and clouds providers
	// reach are the user's choice).
	add(networkingv1.SchemeGroupVersion.WithKind("NetworkPolicy"), &networkingv1.NetworkPolicy{ObjectMeta: nsMeta(ManagerName, nil),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: selector},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				Ports: []networkingv1.NetworkPolicyPort{port("webhook"), port("metrics"), port("probes")},
			}},
		}})

	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, obj := range objs {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return nil, fmt.Errorf("cannot convert %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, err)
		}
		u := &unstructured.Unstructured{Object: m}
		unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
		unstructured.RemoveNestedField(u.Object, "status")
		unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "creationTimestamp")
		out = append(out, u)
	}
	return out, nil
}

// YAML renders objects as one multi-document YAML stream.
func YAML(objs []*unstructured.Unstructured) ([]byte, error) {
	var b strings.Builder
	for _, u := range objs {
		y, err := yaml.Marshal(u.Object)
		if err != nil {
			return nil, fmt.Errorf("cannot encode %s %s: %w", u.GetKind(), u.GetName(), err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return []byte(b.String()), nil
}

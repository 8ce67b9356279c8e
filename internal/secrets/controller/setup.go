package controller

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/kit/egress"
	"github.com/strata-dev/strata/internal/kubeclient"
	"github.com/strata-dev/strata/internal/secrets/provider"
	"github.com/strata-dev/strata/internal/secrets/provider/all"
	"github.com/strata-dev/strata/internal/secrets/pushsecret"
)

// Options configure the external-secrets subsystem.
type Options struct {
	// Workers is the number of concurrent reconciles per controller.
	Workers int
	// ClientLimit rate-limits the controllers' API client; zero fields take
	// DefaultClientLimit.
	ClientLimit kubeclient.Limit
	// Constructors maps provider names to constructors; nil uses
	// all.Constructors.
	Constructors map[string]provider.Constructor
	// Clients, when set, is used instead of a new cache (tests read its call
	// counts).
	Clients *Clients
	// Egress is the networks SecretStores' providers may not connect to
	// (ClusterSecretStores are the admin's and are not restricted).
	Egress egress.Policy
}

// DefaultClientLimit is the API client's rate limit unless
// --kube-api-qps/--kube-api-burst say otherwise: an ExternalSecret costs a
// Secret apply and a status patch per change.
var DefaultClientLimit = kubeclient.Limit{QPS: 500, Burst: 1000}

// Field indexes.
const (
	indexStoreRef   = "secrets.strata.dev/store-ref"
	indexTargetName = "secrets.strata.dev/target-name"
	// indexTemplateRef: "ConfigMap/<name>" and "Secret/<name>" of the
	// ExternalSecret's templateFrom, so a template that appears or changes
	// wakes the ExternalSecrets that use it.
	indexTemplateRef = "secrets.strata.dev/template-ref"
)

func templateRefs(es *secretsv1.ExternalSecret) []string {
	t := es.Spec.Target.Template
	if t == nil {
		return nil
	}
	var out []string
	for _, tf := range t.TemplateFrom {
		if tf.ConfigMap != nil {
			out = append(out, "ConfigMap/"+tf.ConfigMap.Name)
		}
		if tf.Secret != nil {
			out = append(out, "Secret/"+tf.Secret.Name)
		}
	}
	return out
}

func storeRefKey(kind, name string) string { return kind + "/" + name }

// Setup registers the store, ExternalSecret, ClusterExternalSecret and
// reload controllers with mgr.
func Setup(mgr ctrl.Manager, o Options) error {
	if o.Workers == 0 {
		o.Workers = 4
	}
	if o.Constructors == nil {
		o.Constructors = all.Constructors
	}
	c, _, err := kubeclient.New(mgr, o.ClientLimit.Or(DefaultClientLimit), nil)
	if err != nil {
		return err
	}
	clients := o.Clients
	if clients == nil {
		clients = NewClients(o.Constructors, c, mgr.GetConfig())
		clients.Egress = o.Egress
	}
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &secretsv1.ExternalSecret{}, indexStoreRef, func(o client.Object) []string {
		es := o.(*secretsv1.ExternalSecret)
		return []string{storeRefKey(es.StoreKind(), es.Spec.SecretStoreRef.Name)}
	}); err != nil {
		return fmt.Errorf("cannot index ExternalSecrets by store: %w", err)
	}
	if err := idx.IndexField(ctx, &secretsv1.ExternalSecret{}, indexTargetName, func(o client.Object) []string {
		return []string{o.(*secretsv1.ExternalSecret).TargetName()}
	}); err != nil {
		return fmt.Errorf("cannot index ExternalSecrets by target: %w", err)
	}
	if err := idx.IndexField(ctx, &secretsv1.ExternalSecret{}, indexTemplateRef, func(o client.Object) []string {
		return templateRefs(o.(*secretsv1.ExternalSecret))
	}); err != nil {
		return fmt.Errorf("cannot index ExternalSecrets by template: %w", err)
	}
	if err := setupStores(mgr, c, clients, o.Workers); err != nil {
		return err
	}
	if err := setupExternalSecret(mgr, c, clients, o.Workers); err != nil {
		return err
	}
	if err := setupClusterExternalSecret(mgr, c, o.Workers); err != nil {
		return err
	}
	if err := pushsecret.Setup(mgr, c, &pushStores{r: &esReconciler{client: c}, clients: clients}, o.Workers); err != nil {
		return err
	}
	for _, w := range []workloadKind{
		{name: "deployment", new: func() client.Object { return &appsv1.Deployment{} }},
		{name: "statefulset", new: func() client.Object { return &appsv1.StatefulSet{} }},
		{name: "daemonset", new: func() client.Object { return &appsv1.DaemonSet{} }},
	} {
		if err := setupReload(mgr, c, w, o.Workers); err != nil {
			return err
		}
	}
	return nil
}

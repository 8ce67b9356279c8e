package install

import (
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// This file is the one place that says what each subsystem of the manager
// may do in a cluster. `strata install` creates one ClusterRole
// `strata:<subsystem>` per selected subsystem from SubsystemRules, bound to
// the manager's ServiceAccount, plus the rules every subsystem shares
// (commonRules) and the leader election Role in the install namespace.
//
// A new subsystem adds ONE entry to SubsystemRules, keyed by the name it
// has in internal/manager/subsystems.go (TestEverySubsystemHasRules in
// internal/cli fails until it does), listing only the API groups and
// verbs its controllers use. The rules are tested: the manager runs as the
// installed ServiceAccount in internal/install's integration test, so a
// missing rule fails a flow there.
//
// What a subsystem writes on behalf of users (objects a Composition
// composes, objects a Sync applies without serviceAccountName) is not
// listed here: it comes from the `strata:reconciler` ClusterRole, which
// aggregates every ClusterRole labelled ReconcilerAggregationLabel=true
// (as Crossplane aggregates `rbac.crossplane.io/aggregate-to-crossplane`).
// By default the install adds one such role with full rights, as Flux's
// cluster-reconciler binding does; `--lockdown` leaves it out, and the
// platform team labels ClusterRoles for exactly the kinds its
// Compositions compose and its Syncs apply.

// verbs
var (
	readVerbs  = []string{"get", "list", "watch"}
	writeVerbs = []string{"get", "list", "watch", "create", "update", "patch", "delete"}
	allVerbs   = []string{"*"}
)

func rule(groups, resources, verbs []string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: groups, Resources: resources, Verbs: verbs}
}

func strs(s ...string) []string { return s }

// providerRules are the rules of a provider subsystem: its own API group
// (managed kinds, ProviderConfigs, their status and finalizers), the
// credentials Secrets ProviderConfigs reference, and the connection
// Secrets managed resources write.
func providerRules(groups ...string) []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		rule(groups, strs("*"), allVerbs),
		rule(strs(""), strs("secrets"), writeVerbs),
	}
}

// SubsystemRules is the least-privilege RBAC of each manager subsystem, by
// the subsystem's name in internal/manager.
var SubsystemRules = map[string][]rbacv1.PolicyRule{
	"composition": {
		rule(strs("apiextensions.strata.dev"), strs("*"), allVerbs),
		// An XRD defines its composite and claim kinds as CRDs.
		rule(strs("apiextensions.k8s.io"), strs("customresourcedefinitions"), writeVerbs),
		// Connection details of composed resources and claims.
		rule(strs(""), strs("secrets"), writeVerbs),
		rule(strs(""), strs("namespaces"), readVerbs),
	},
	"gitops": {
		rule(strs("gitops.strata.dev"), strs("*"), allVerbs),
		// Git credentials, SOPS keys, webhook tokens and substituteFrom.
		rule(strs(""), strs("secrets", "configmaps"), readVerbs),
		// The Alertmanager receiver asks Rollouts to abort (an annotation).
		rule(strs("delivery.strata.dev"), strs("rollouts"), strs("get", "list", "watch", "patch")),
		rule(strs(""), strs("namespaces"), readVerbs),
		// A Sync with serviceAccountName (or under --default-service-account)
		// acts as that account (docs/security.md).
		rule(strs(""), strs("serviceaccounts"), strs("impersonate")),
		// A Deployment that a Rollout rolls out is as healthy as its Rollout;
		// an abort wakes the Sync that applied it.
		rule(strs("delivery.strata.dev"), strs("rollouts"), readVerbs),
	},
	// The next three arrive with their subsystems (branches secrets/vault,
	// analysis, notify); check them against the RBAC test when merging.
	"secrets": {
		rule(strs("secrets.strata.dev"), strs("*"), allVerbs),
		// ExternalSecrets write their target Secrets; stores read credentials.
		rule(strs(""), strs("secrets"), writeVerbs),
		// Stores that log in with a ServiceAccount token (Vault Kubernetes auth).
		rule(strs(""), strs("serviceaccounts/token"), strs("create")),
		rule(strs(""), strs("namespaces"), readVerbs),
		// caProvider bundles and templateFrom templates.
		rule(strs(""), strs("configmaps"), readVerbs),
		// Reloading: workloads that use a Secret restart when it changes.
		rule(strs("apps"), strs("deployments", "statefulsets", "daemonsets"), strs("get", "list", "watch", "patch", "update")),
	},
	"delivery": {
		rule(strs("delivery.strata.dev"), strs("*"), allVerbs),
		// Analyses gate and roll back Syncs.
		rule(strs("gitops.strata.dev"), strs("syncs", "syncs/status"), strs("get", "list", "watch", "patch", "update")),
		rule(strs(""), strs("secrets"), readVerbs),
		// Job measurements: created as the tenant, watched and cleaned up
		// by the manager.
		rule(strs("batch"), strs("jobs"), strs("get", "list", "watch", "delete")),
		rule(strs(""), strs("serviceaccounts"), strs("impersonate")),
		// Rollouts watch what they act on (as the tenant, who needs the
		// rights to write it) to wake up when it changes.
		rule(strs("apps"), strs("deployments", "replicasets"), readVerbs),
		rule(strs(""), strs("services"), readVerbs),
		// Promotion: Stages read GitRepositories and pin them (as the
		// tenant when it has a service account), and check who may
		// override promotion windows.
		rule(strs("gitops.strata.dev"), strs("gitrepositories"), strs("get", "list", "watch", "patch")),
		rule(strs("authorization.k8s.io"), strs("subjectaccessreviews"), strs("create")),
	},
	"notification": {
		rule(strs("notification.strata.dev"), strs("*"), allVerbs),
		// Provider tokens and webhook URLs.
		rule(strs(""), strs("secrets"), readVerbs),
		// What alerts watch: Strata objects and their events.
		rule(strs("gitops.strata.dev", "delivery.strata.dev", "apiextensions.strata.dev"), strs("*"), readVerbs),
		rule(strs("", "events.k8s.io"), strs("events"), readVerbs),
	},
	"provider-nop": providerRules("nop.strata.dev"),
	"provider-sql": providerRules("postgresql.sql.strata.dev", "mysql.sql.strata.dev"),
	"provider-s3":  providerRules("s3.aws.strata.dev"),
}

// commonRules are granted to the manager whatever subsystems it runs:
// events, and reading CRDs and discovery (the REST mapper, health checks).
var commonRules = []rbacv1.PolicyRule{
	rule(strs("", "events.k8s.io"), strs("events"), strs("create", "patch", "update")),
	rule(strs("apiextensions.k8s.io"), strs("customresourcedefinitions"), readVerbs),
}

// leaderElectionRules are granted in the install namespace only.
var leaderElectionRules = []rbacv1.PolicyRule{
	rule(strs("coordination.k8s.io"), strs("leases"), strs("get", "list", "watch", "create", "update", "patch", "delete")),
	rule(strs(""), strs("events"), strs("create", "patch")),
}

// Strata's API groups, for the aggregated user roles.
var (
	// platformGroups are written by platform teams (edit and admin may
	// write them; view may read them).
	platformGroups = []string{"apiextensions.strata.dev"}
	// tenantGroups are written by namespace users: Syncs and GitRepositories.
	tenantGroups = []string{"gitops.strata.dev", "delivery.strata.dev", "notification.strata.dev", "secrets.strata.dev"}
	// providerGroups hold ProviderConfigs (credentials: admin only) and
	// managed resources.
	providerGroups = []string{"nop.strata.dev", "postgresql.sql.strata.dev", "mysql.sql.strata.dev", "s3.aws.strata.dev"}
)

// ReconcilerAggregationLabel labels ClusterRoles aggregated into
// strata:reconciler: the rights to write what Compositions compose and
// Syncs apply.
const ReconcilerAggregationLabel = "strata.dev/aggregate-to-reconciler"

// userRoles returns strata-view, strata-edit and strata-admin, aggregated
// into the built-in view, edit and admin ClusterRoles, for the kinds of
// crds. Users read everything of the kinds they see, status included, but
// write only the objects themselves, never a subresource, as Kubernetes'
// own edit and admin roles leave out deployments/status: a status is the
// controllers' record and they act on it (a Stage's promotion in flight, a
// Promotion's window override), so a user who wrote one could make a
// controller act on a record it never made.
func userRoles(crds []*apiextensionsv1.CustomResourceDefinition) map[string][]rbacv1.PolicyRule {
	all := append(append(append([]string{}, platformGroups...), tenantGroups...), providerGroups...)
	write := func(groups []string) rbacv1.PolicyRule { return rule(groups, kindsOf(crds, groups), writeVerbs) }
	return map[string][]rbacv1.PolicyRule{
		"view": {rule(all, strs("*"), readVerbs)},
		"edit": {
			write(tenantGroups),
			rule(all, strs("*"), readVerbs),
		},
		"admin": {
			write(tenantGroups),
			write(platformGroups),
			write(providerGroups),
			rule(all, strs("*"), readVerbs),
		},
	}
}

// kindsOf is the sorted resource names (plurals) of the crds in groups.
func kindsOf(crds []*apiextensionsv1.CustomResourceDefinition, groups []string) []string {
	in := map[string]bool{}
	for _, g := range groups {
		in[g] = true
	}
	var out []string
	for _, c := range crds {
		if in[c.Spec.Group] {
			out = append(out, c.Spec.Names.Plural)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

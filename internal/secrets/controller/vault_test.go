package controller

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/testenv/vaulttest"
)

// vaultStore is a SecretStore of ns reading the KV v2 mount secret/ of the
// Vault at server with token (kept in a Secret of ns).
func vaultStore(t *testing.T, ns, name, server, token string) *secretsv1.SecretStore {
	t.Helper()
	path := "secret"
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-token"}, StringData: map[string]string{"token": token}})
	st := &secretsv1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: secretsv1.SecretStoreSpec{Provider: secretsv1.SecretStoreProvider{Vault: &secretsv1.VaultProvider{Server: server, Path: &path,
			Auth: secretsv1.VaultAuth{TokenSecretRef: &secretsv1.SecretKeySelector{Name: name + "-token", Key: "token"}}}}}}
	create(t, st)
	return st
}

func kubernetesAuthStore(ns, name, server string, sa secretsv1.ServiceAccountSelector) *secretsv1.SecretStore {
	path := "secret"
	return &secretsv1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: secretsv1.SecretStoreSpec{Provider: secretsv1.SecretStoreProvider{Vault: &secretsv1.VaultProvider{Server: server, Path: &path,
			Auth: secretsv1.VaultAuth{Kubernetes: &secretsv1.VaultKubernetesAuth{MountPath: "kubernetes", Role: "reader", ServiceAccountRef: &sa}}}}}}
}

// Vault's Kubernetes auth end to end: a SecretStore logs in with a token
// the controller requests (TokenRequest API, audience "vault") for a
// ServiceAccount of its namespace; Vault checks it with the real API
// server's TokenReview. A wrong audience and an unbound ServiceAccount are
// refused by Vault; a SecretStore naming a ServiceAccount of another
// namespace (one Vault's role accepts) is refused before a token is
// requested (the namespace check comes first), and nothing is written.
func TestVaultKubernetesAuth(t *testing.T) {
	ctx := context.Background()
	vs := vaulttest.Start(t)
	tenant := namespace(t, nil)
	victim := namespace(t, nil)
	cs := kubernetes.NewForConfigOrDie(env.Config)
	vs.KubernetesAuth(t, env.Config, "kubernetes", "vault-auth")
	vs.Policy(t, "k8s-reader", "secret/data/k8s/*", "secret/metadata/k8s/*")
	vaulttest.EnsureServiceAccount(t, cs, tenant, "reader")
	vaulttest.EnsureServiceAccount(t, cs, tenant, "intruder")
	vaulttest.EnsureServiceAccount(t, cs, victim, "reader")
	// The role binds the tenant's reader and the victim's reader.
	vs.KubernetesRoleFor(t, "kubernetes", "reader", []string{tenant, victim}, []string{"reader"}, "vault", "k8s-reader")
	const pw = "k8s-auth-password-never-shown"
	vs.Put(t, "secret", "k8s/app", map[string]any{"password": pw})

	good := kubernetesAuthStore(tenant, "vault", vs.Addr, secretsv1.ServiceAccountSelector{Name: "reader"})
	create(t, good)
	ready(t, good, metav1.ConditionTrue, secretsv1.ReasonValid)
	es := externalSecret(tenant, "app", "vault", item("password", "k8s/app", "password"))
	create(t, es)
	ready(t, es, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)
	if got := secretData(t, tenant, "app")["password"]; got != pw {
		t.Fatalf("Secret app holds %q", got)
	}

	wrongAudience := kubernetesAuthStore(tenant, "wrong-audience", vs.Addr, secretsv1.ServiceAccountSelector{Name: "reader", Audiences: []string{"not-vault"}})
	unbound := kubernetesAuthStore(tenant, "unbound", vs.Addr, secretsv1.ServiceAccountSelector{Name: "intruder"})
	create(t, wrongAudience, unbound)
	for _, st := range []*secretsv1.SecretStore{wrongAudience, unbound} {
		msg := ready(t, st, metav1.ConditionFalse, secretsv1.ReasonProviderError)
		if !strings.Contains(msg, vs.Addr) || !strings.Contains(msg, "auth/kubernetes/login") {
			t.Errorf("store %s: message %q does not name the server and the login", st.Name, msg)
		}
	}

	// Attack: the tenant names the victim's ServiceAccount, which Vault's
	// role accepts. A SecretStore may not leave its namespace.
	stolen := kubernetesAuthStore(tenant, "stolen", vs.Addr, secretsv1.ServiceAccountSelector{Name: "reader", Namespace: victim})
	create(t, stolen)
	msg := ready(t, stolen, metav1.ConditionFalse, secretsv1.ReasonInvalidProviderConfig)
	if !strings.Contains(msg, "serviceAccountRef.namespace names namespace \""+victim+"\"") || !strings.Contains(msg, "may only reference its own namespace") {
		t.Errorf("message %q does not say the victim's ServiceAccount is refused", msg)
	}
	if !conditions.IsTrue(stolen, conditions.Stalled) {
		t.Errorf("store stolen is not Stalled: %v", stolen.Status.Conditions)
	}
	esStolen := externalSecret(tenant, "stolen", "stolen", item("password", "k8s/app", "password"))
	create(t, esStolen)
	ready(t, esStolen, metav1.ConditionFalse, secretsv1.ReasonStoreNotReady)
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: tenant, Name: "stolen"}, &corev1.Secret{}); err == nil {
		t.Error("a Secret was written through the victim's ServiceAccount")
	}
	noValueLeaks(t, tenant, pw)
}

// dataFrom rewrite (regexp and transform) and decodingStrategy against the
// real Vault: extract and find results are renamed before they are
// written; Base64, Base64URL and Auto decode; a value that is not base64,
// a rewrite that gives a key a Secret cannot hold, and a regexp that does
// not compile are refused with a reason naming the field, and no value.
func TestVaultRewriteAndDecoding(t *testing.T) {
	vs := vaulttest.Start(t)
	ns := namespace(t, nil)
	const secretValue = "rewrite-value-never-shown"
	b64 := base64.StdEncoding.EncodeToString([]byte(secretValue + "+/?"))
	b64url := base64.URLEncoding.EncodeToString([]byte(secretValue + "+/?"))
	vs.Put(t, "secret", "rw/db", map[string]any{"db-user": "app", "db-password": secretValue, "unrelated": "x"})
	vs.Put(t, "secret", "rw/enc", map[string]any{"std": b64, "url": b64url, "plain": "not base64!"})
	vs.Put(t, "secret", "rw/team/one", map[string]any{"v": "1"})
	vs.Put(t, "secret", "rw/team/two", map[string]any{"v": "2"})
	st := vaultStore(t, ns, "vault", vs.Addr, vs.RootToken)
	ready(t, st, metav1.ConditionTrue, secretsv1.ReasonValid)

	es := &secretsv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rewritten"},
		Spec: secretsv1.ExternalSecretSpec{SecretStoreRef: secretsv1.SecretStoreRef{Name: "vault"}, RefreshInterval: &metav1.Duration{Duration: time.Hour},
			DataFrom: []secretsv1.ExternalSecretDataFromRemoteRef{
				{Extract: &secretsv1.ExternalSecretDataRemoteRef{Key: "rw/db"}, Rewrite: []secretsv1.ExternalSecretRewrite{
					{Regexp: &secretsv1.ExternalSecretRewriteRegexp{Source: `^db-(.*)$`, Target: "DB_$1"}},
					{Transform: &secretsv1.ExternalSecretRewriteTransform{Template: `{{ .value | upper }}`}},
				}},
				{Find: &secretsv1.ExternalSecretFind{Path: strPtr("rw/team"), Name: &secretsv1.FindName{RegExp: "team/"}},
					Rewrite: []secretsv1.ExternalSecretRewrite{{Regexp: &secretsv1.ExternalSecretRewriteRegexp{Source: `^rw/team/`, Target: "team-"}}}},
				{Extract: &secretsv1.ExternalSecretDataRemoteRef{Key: "rw/enc", Property: "", DecodingStrategy: secretsv1.DecodingAuto},
					Rewrite: []secretsv1.ExternalSecretRewrite{{Regexp: &secretsv1.ExternalSecretRewriteRegexp{Source: `^`, Target: "auto-"}}}},
			},
			Data: []secretsv1.ExternalSecretData{
				{SecretKey: "std", RemoteRef: secretsv1.ExternalSecretDataRemoteRef{Key: "rw/enc", Property: "std", DecodingStrategy: secretsv1.DecodingBase64}},
				{SecretKey: "url", RemoteRef: secretsv1.ExternalSecretDataRemoteRef{Key: "rw/enc", Property: "url", DecodingStrategy: secretsv1.DecodingBase64URL}},
				{SecretKey: "none", RemoteRef: secretsv1.ExternalSecretDataRemoteRef{Key: "rw/enc", Property: "std", DecodingStrategy: secretsv1.DecodingNone}},
			}}}
	create(t, es)
	ready(t, es, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)
	got := secretData(t, ns, "rewritten")
	want := map[string]string{
		"DB_USER": "app", "DB_PASSWORD": secretValue, "UNRELATED": "x",
		"team-one": `{"v":"1"}`, "team-two": `{"v":"2"}`,
		"auto-std": secretValue + "+/?", "auto-url": secretValue + "+/?", "auto-plain": "not base64!",
		"std": secretValue + "+/?", "url": secretValue + "+/?", "none": b64,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("key %s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("keys %v, want %d keys", keysOf(got), len(want))
	}

	bad := map[string]struct {
		spec   secretsv1.ExternalSecretSpec
		reason string
		says   []string
	}{
		"not-base64": {spec: secretsv1.ExternalSecretSpec{Data: []secretsv1.ExternalSecretData{
			{SecretKey: "p", RemoteRef: secretsv1.ExternalSecretDataRemoteRef{Key: "rw/enc", Property: "plain", DecodingStrategy: secretsv1.DecodingBase64}}}},
			reason: secretsv1.ReasonInvalidSpec, says: []string{"spec.data[0]", `secretKey "p"`, "is not Base64"}},
		"extract-not-base64": {spec: secretsv1.ExternalSecretSpec{DataFrom: []secretsv1.ExternalSecretDataFromRemoteRef{
			{Extract: &secretsv1.ExternalSecretDataRemoteRef{Key: "rw/db", DecodingStrategy: secretsv1.DecodingBase64URL}}}},
			reason: secretsv1.ReasonInvalidSpec, says: []string{"spec.dataFrom[0].extract.decodingStrategy", "is not Base64URL"}},
		"bad-key": {spec: secretsv1.ExternalSecretSpec{DataFrom: []secretsv1.ExternalSecretDataFromRemoteRef{
			{Extract: &secretsv1.ExternalSecretDataRemoteRef{Key: "rw/db"}, Rewrite: []secretsv1.ExternalSecretRewrite{{Regexp: &secretsv1.ExternalSecretRewriteRegexp{Source: "-", Target: " / "}}}}}},
			reason: secretsv1.ReasonInvalidSpec, says: []string{"spec.dataFrom[0] gives key(s) that cannot be Secret keys", `"db / user"`}},
		"bad-regexp": {spec: secretsv1.ExternalSecretSpec{DataFrom: []secretsv1.ExternalSecretDataFromRemoteRef{
			{Extract: &secretsv1.ExternalSecretDataRemoteRef{Key: "rw/db"}, Rewrite: []secretsv1.ExternalSecretRewrite{{Regexp: &secretsv1.ExternalSecretRewriteRegexp{Source: "(", Target: "x"}}}}}},
			reason: secretsv1.ReasonInvalidSpec, says: []string{"spec.dataFrom[0].rewrite[0].regexp.source does not compile"}},
		"bad-transform": {spec: secretsv1.ExternalSecretSpec{DataFrom: []secretsv1.ExternalSecretDataFromRemoteRef{
			{Extract: &secretsv1.ExternalSecretDataRemoteRef{Key: "rw/db"}, Rewrite: []secretsv1.ExternalSecretRewrite{{Transform: &secretsv1.ExternalSecretRewriteTransform{Template: "{{ .value "}}}}}},
			reason: secretsv1.ReasonInvalidSpec, says: []string{"spec.dataFrom[0].rewrite[0].transform template"}},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			e := &secretsv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: tc.spec}
			e.Spec.SecretStoreRef = secretsv1.SecretStoreRef{Name: "vault"}
			create(t, e)
			msg := ready(t, e, metav1.ConditionFalse, tc.reason)
			for _, s := range tc.says {
				if !strings.Contains(msg, s) {
					t.Errorf("message %q does not say %q", msg, s)
				}
			}
			if !conditions.IsTrue(e, conditions.Stalled) {
				t.Errorf("not Stalled: %v", e.Status.Conditions)
			}
			if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &corev1.Secret{}); err == nil {
				t.Error("a Secret was written")
			}
		})
	}
	noValueLeaks(t, ns, secretValue, b64)
}

// target.template.templateFrom against the real Vault: a ConfigMap item
// rendered as the value of its key, a Secret item rendered as keys and
// values, a literal rendered into labels; a template ConfigMap that does
// not exist in the ExternalSecret's namespace is refused even when one of
// that name exists in another namespace (templates never cross
// namespaces), and creating it heals the ExternalSecret.
func TestVaultTemplateFrom(t *testing.T) {
	ctx := context.Background()
	vs := vaulttest.Start(t)
	ns := namespace(t, nil)
	other := namespace(t, nil)
	const pw = "template-password-never-shown"
	vs.Put(t, "secret", "tpl/db", map[string]any{"user": "app", "password": pw})
	st := vaultStore(t, ns, "vault", vs.Addr, vs.RootToken)
	ready(t, st, metav1.ConditionTrue, secretsv1.ReasonValid)
	create(t,
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-config"},
			Data: map[string]string{"config.yaml": "database:\n  user: {{ .user }}\n  password: {{ .password }}\n", "ignored": "x"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-env"},
			StringData: map[string]string{"env": "DB_USER: {{ .user | upper }}\nDB_DSN: postgres://{{ .user }}:{{ .password }}@db/app\n"}},
		// A ConfigMap in another namespace with the name the second
		// ExternalSecret asks for.
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "elsewhere"}, Data: map[string]string{"k": "stolen {{ .password }}"}},
	)
	literal := "team: {{ .user }}"
	es := &secretsv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "templated"},
		Spec: secretsv1.ExternalSecretSpec{SecretStoreRef: secretsv1.SecretStoreRef{Name: "vault"}, RefreshInterval: &metav1.Duration{Duration: time.Hour},
			DataFrom: []secretsv1.ExternalSecretDataFromRemoteRef{{Extract: &secretsv1.ExternalSecretDataRemoteRef{Key: "tpl/db"}}},
			Target: secretsv1.ExternalSecretTarget{Template: &secretsv1.ExternalSecretTemplate{
				Data: map[string]string{"user": "{{ .user }}"},
				TemplateFrom: []secretsv1.TemplateFrom{
					{ConfigMap: &secretsv1.TemplateRef{Name: "app-config", Items: []secretsv1.TemplateRefItem{{Key: "config.yaml"}}}},
					{Secret: &secretsv1.TemplateRef{Name: "app-env", Items: []secretsv1.TemplateRefItem{{Key: "env", TemplateAs: secretsv1.TemplateScopeKeysAndValues}}}},
					{Literal: &literal, Target: secretsv1.TemplateTargetLabels},
				}}}}}
	create(t, es)
	ready(t, es, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)
	got := secretData(t, ns, "templated")
	want := map[string]string{
		"config.yaml": "database:\n  user: app\n  password: " + pw + "\n",
		"DB_USER":     "APP",
		"DB_DSN":      "postgres://app:" + pw + "@db/app",
		"user":        "app",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("key %s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("keys %v, want %d keys", keysOf(got), len(want))
	}
	sec := &corev1.Secret{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "templated"}, sec); err != nil {
		t.Fatal(err)
	}
	if sec.Labels["team"] != "app" || sec.Labels[secretsv1.ManagedByLabel] != secretsv1.ManagedByValue {
		t.Errorf("labels %v", sec.Labels)
	}

	// A template can neither name another namespace nor forge ownership.
	forged := "secrets.strata.dev/owner: someone/else"
	cross := &secretsv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cross"},
		Spec: secretsv1.ExternalSecretSpec{SecretStoreRef: secretsv1.SecretStoreRef{Name: "vault"}, RefreshInterval: &metav1.Duration{Duration: time.Hour},
			DataFrom: []secretsv1.ExternalSecretDataFromRemoteRef{{Extract: &secretsv1.ExternalSecretDataRemoteRef{Key: "tpl/db"}}},
			Target: secretsv1.ExternalSecretTarget{Template: &secretsv1.ExternalSecretTemplate{TemplateFrom: []secretsv1.TemplateFrom{
				{ConfigMap: &secretsv1.TemplateRef{Name: "elsewhere", Items: []secretsv1.TemplateRefItem{{Key: "k"}}}},
				{Literal: &forged, Target: secretsv1.TemplateTargetAnnotations},
			}}}}}
	create(t, cross)
	msg := ready(t, cross, metav1.ConditionFalse, secretsv1.ReasonTemplateInvalid)
	if !strings.Contains(msg, "spec.target.template.templateFrom[0].configMap") || !strings.Contains(msg, "ConfigMap "+ns+"/elsewhere not found") {
		t.Errorf("message %q does not name the field and the ConfigMap", msg)
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "cross"}, &corev1.Secret{}); err == nil {
		t.Error("a Secret was written from another namespace's template")
	}
	create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "elsewhere"}, Data: map[string]string{"k": "own {{ .user }}"}})
	ready(t, cross, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)
	if got := secretData(t, ns, "cross")["k"]; got != "own app" {
		t.Errorf("key k = %q", got)
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "cross"}, sec); err != nil {
		t.Fatal(err)
	}
	if o := sec.Annotations[secretsv1.OwnerAnnotation]; o != ns+"/cross" {
		t.Errorf("the template forged the owner annotation: %q", o)
	}

	// An item the ConfigMap lacks.
	missing := es.DeepCopy()
	missing.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: "missing-item"}
	missing.Spec.Target.Template.TemplateFrom = []secretsv1.TemplateFrom{{ConfigMap: &secretsv1.TemplateRef{Name: "app-config", Items: []secretsv1.TemplateRefItem{{Key: "nope"}}}}}
	create(t, missing)
	msg = ready(t, missing, metav1.ConditionFalse, secretsv1.ReasonTemplateInvalid)
	if !strings.Contains(msg, `has no key "nope"`) {
		t.Errorf("message %q", msg)
	}
	noValueLeaks(t, ns, pw)
}

// refreshPolicy against the real Vault: Periodic picks up a value changed
// in Vault within the interval; OnChange does not poll but fetches on a
// spec change; CreatedOnce fetches neither for a Vault change nor for a
// spec change (and says so), but does on a manual refresh and recreates a
// deleted Secret.
func TestVaultRefreshPolicy(t *testing.T) {
	ctx := context.Background()
	vs := vaulttest.Start(t)
	ns := namespace(t, nil)
	vs.Put(t, "secret", "rp/app", map[string]any{"v": "one"})
	st := vaultStore(t, ns, "vault", vs.Addr, vs.RootToken)
	ready(t, st, metav1.ConditionTrue, secretsv1.ReasonValid)
	mk := func(name string, policy secretsv1.ExternalSecretRefreshPolicy) *secretsv1.ExternalSecret {
		es := externalSecret(ns, name, "vault", item("v", "rp/app", "v"))
		es.Spec.RefreshPolicy = policy
		es.Spec.RefreshInterval = &metav1.Duration{Duration: time.Second}
		create(t, es)
		ready(t, es, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)
		return es
	}
	periodic := mk("periodic", secretsv1.RefreshPolicyPeriodic)
	onChange := mk("on-change", secretsv1.RefreshPolicyOnChange)
	once := mk("once", secretsv1.RefreshPolicyCreatedOnce)
	value := func(name string) string { return secretData(t, ns, name)["v"] }

	vs.Put(t, "secret", "rp/app", map[string]any{"v": "two"})
	eventually(t, "Periodic picks up the new value", func() (bool, string) { return value("periodic") == "two", value("periodic") })
	// Periodic refreshes every second: after two more of its refreshes the
	// others would have refreshed too if they polled.
	refreshed := func(es *secretsv1.ExternalSecret) time.Time {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(es), es); err != nil {
			t.Fatal(err)
		}
		return es.Status.RefreshTime.Time
	}
	p0 := refreshed(periodic)
	eventually(t, "two more Periodic refreshes", func() (bool, string) {
		return refreshed(periodic).Sub(p0) >= 2*time.Second, refreshed(periodic).String()
	})
	if v := value("on-change"); v != "one" {
		t.Errorf("OnChange fetched without a change: %q", v)
	}
	if v := value("once"); v != "one" {
		t.Errorf("CreatedOnce fetched again: %q", v)
	}

	// A spec change: OnChange fetches, CreatedOnce does not (and says why).
	relabel := func(es *secretsv1.ExternalSecret) {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(es), es); err != nil {
			t.Fatal(err)
		}
		es.Spec.Target.Template = &secretsv1.ExternalSecretTemplate{Metadata: secretsv1.ExternalSecretTemplateMetadata{Labels: map[string]string{"changed": "yes"}}}
		if err := env.Client.Update(ctx, es); err != nil {
			t.Fatal(err)
		}
	}
	relabel(onChange)
	relabel(once)
	eventually(t, "OnChange fetches for the spec change", func() (bool, string) { return value("on-change") == "two", value("on-change") })
	eventually(t, "CreatedOnce observes the change", func() (bool, string) {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(once), once); err != nil {
			return false, err.Error()
		}
		return once.Status.ObservedGeneration == once.Generation, "not observed"
	})
	if c := conditions.Get(once, conditions.Ready); c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "refreshPolicy CreatedOnce") {
		t.Errorf("CreatedOnce Ready condition %v does not say the change is not applied", c)
	}
	if v := value("once"); v != "one" {
		t.Errorf("CreatedOnce fetched for a spec change: %q", v)
	}
	// A manual refresh applies it.
	refresh(t, once)
	eventually(t, "CreatedOnce fetches on a manual refresh", func() (bool, string) { return value("once") == "two", value("once") })
	// A deleted Secret is created again, with the current value.
	vs.Put(t, "secret", "rp/app", map[string]any{"v": "three"})
	if err := env.Client.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "once"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "CreatedOnce recreates the deleted Secret", func() (bool, string) {
		s := &corev1.Secret{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "once"}, s); err != nil {
			return false, err.Error()
		}
		return string(s.Data["v"]) == "three", string(s.Data["v"])
	})
}

// flaky is a loopback proxy in front of Vault that answers 503 to the next
// fail KV reads, and counts the KV reads.
type flaky struct {
	srv   *httptest.Server
	fail  atomic.Int64
	reads atomic.Int64
}

func newFlaky(t *testing.T, target string) *flaky {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	f := &flaky{}
	rp := httputil.NewSingleHostReverseProxy(u)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/data/") {
			f.reads.Add(1)
			if f.fail.Add(-1) >= 0 {
				http.Error(w, `{"errors":["temporarily unavailable"]}`, http.StatusServiceUnavailable)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// spec.retrySettings against the real Vault behind a proxy that fails
// reads: with maxRetries 3 a read that fails twice is retried within the
// reconcile (three reads, no error on the ExternalSecret); without retry
// settings the first failure is reported (SecretSyncedError) and the
// reconcile backs off.
func TestVaultRetrySettings(t *testing.T) {
	vs := vaulttest.Start(t)
	ns := namespace(t, nil)
	vs.Put(t, "secret", "retry/app", map[string]any{"v": "ok"})
	proxy := newFlaky(t, vs.Addr)
	retrying := vaultStore(t, ns, "retrying", proxy.srv.URL, vs.RootToken)
	plain := vaultStore(t, ns, "plain", proxy.srv.URL, vs.RootToken)
	for _, st := range []*secretsv1.SecretStore{retrying, plain} {
		ready(t, st, metav1.ConditionTrue, secretsv1.ReasonValid)
	}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(retrying), retrying); err != nil {
		t.Fatal(err)
	}
	three, interval := int32(3), "50ms"
	retrying.Spec.RetrySettings = &secretsv1.SecretStoreRetrySettings{MaxRetries: &three, RetryInterval: &interval}
	if err := env.Client.Update(context.Background(), retrying); err != nil {
		t.Fatal(err)
	}
	eventually(t, "store revalidated", func() (bool, string) {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(retrying), retrying); err != nil {
			return false, err.Error()
		}
		return retrying.Status.ObservedGeneration == retrying.Generation && conditions.IsTrue(retrying, conditions.Ready), "not yet"
	})

	proxy.reads.Store(0)
	proxy.fail.Store(2)
	es := externalSecret(ns, "retried", "retrying", item("v", "retry/app", "v"))
	create(t, es)
	ready(t, es, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)
	// Two failures, then one success (a second reconcile, woken by the
	// Secret's creation before the status lands, may read once more).
	if n := proxy.reads.Load(); n < 3 {
		t.Errorf("%d KV reads, want at least 3 (two failures, one success)", n)
	}
	var evs eventsv1.EventList
	if err := env.Client.List(context.Background(), &evs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs.Items {
		if e.Regarding.Name == "retried" && e.Reason == secretsv1.ReasonSecretSyncedError {
			t.Errorf("the retried read failed the reconcile: %s", e.Note)
		}
	}
	if got := secretData(t, ns, "retried")["v"]; got != "ok" {
		t.Errorf("v = %q", got)
	}
	proxy.fail.Store(1)
	es2 := externalSecret(ns, "not-retried", "plain", item("v", "retry/app", "v"))
	create(t, es2)
	// The first failure shows (an event), then the backoff's next attempt
	// succeeds.
	event(t, ns, "not-retried", secretsv1.ReasonSecretSyncedError)
	ready(t, es2, metav1.ConditionTrue, secretsv1.ReasonSecretSynced)
}

func strPtr(s string) *string { return &s }

func keysOf(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

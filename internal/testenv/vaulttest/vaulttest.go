package vaulttest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/strata-dev/strata/internal/testenv"
)

// Server is a running Vault dev server.
type Server struct {
	// Addr is its http://127.0.0.1:port address.
	Addr string
	// RootToken is the dev server's root token.
	RootToken string
	api       *vaultapi.Client
}

// Start runs bin/vault in dev mode (in-memory storage, unsealed, KV v2 at
// secret/) on a free loopback port until the test ends. A missing binary
// fails the test with the command that builds it.
func Start(t testing.TB) *Server {
	t.Helper()
	s, stop, err := StartServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return s
}

// StartServer is Start for a TestMain: it returns the server and a function
// that stops it.
func StartServer() (*Server, func(), error) {
	bin, err := testenv.Tool("vault")
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	dir, err := os.MkdirTemp("", "strata-vault-")
	if err != nil {
		return nil, nil, err
	}
	// The Vault build has the minimal set of builtin plugins; its
	// Kubernetes auth method is an external plugin, which a dev server
	// registers from its plugin directory under the file's name.
	plugins := filepath.Join(dir, "plugins")
	if err := installPlugin(plugins, "vault-plugin-auth-kubernetes", "kubernetes"); err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	root := "strata-root-" + suffix()
	cmd := testenv.Command(bin, "server", "-dev", "-dev-root-token-id="+root, "-dev-listen-address="+addr, "-dev-no-store-token", "-dev-plugin-dir="+plugins)
	// HOME: a dev server would otherwise write ~/.vault-token.
	cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "VAULT_LOG_LEVEL=warn"}
	logPath := filepath.Join(dir, "vault.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("cannot start vault: %w", err)
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logf.Close()
		_ = os.RemoveAll(dir)
	}
	s := &Server{Addr: "http://" + addr, RootToken: root}
	cfg := &vaultapi.Config{Address: s.Addr, HttpClient: &http.Client{Timeout: 10 * time.Second}}
	s.api, err = vaultapi.NewClient(cfg)
	if err != nil {
		stop()
		return nil, nil, err
	}
	s.api.SetToken(root)
	deadline := time.Now().Add(60 * time.Second)
	for {
		h, err := s.api.Sys().HealthWithContext(context.Background())
		if err == nil && h.Initialized && !h.Sealed {
			return s, stop, nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			stop()
			return nil, nil, fmt.Errorf("vault did not become healthy at %s within 60s: %v\n%s", s.Addr, err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// installPlugin puts the tool binary into dir as name. Vault runs only
// plugins inside its plugin directory (a link out of it is refused), so the
// binary is linked hard when it can be and copied otherwise.
func installPlugin(dir, tool, name string) error {
	src, err := testenv.Tool(tool)
	if err != nil {
		return err
	}
	if src, err = filepath.EvalSymlinks(src); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	dst := filepath.Join(dir, name)
	if os.Link(src, dst) == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return fmt.Errorf("cannot copy %s into vault's plugin directory: %w", tool, err)
	}
	return out.Close()
}

// String names the server in messages.
func (s *Server) String() string { return "vault at " + s.Addr }

// API is a client with the root token.
func (s *Server) API() *vaultapi.Client { return s.api }

// EnableKV mounts a KV engine of version "1" or "2" at path.
func (s *Server) EnableKV(t testing.TB, path, version string) {
	t.Helper()
	err := s.api.Sys().MountWithContext(context.Background(), path, &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": version}})
	if err != nil && !strings.Contains(err.Error(), "existing mount") {
		t.Fatalf("cannot mount KV v%s at %s: %v", version, path, err)
	}
}

// Policy writes a policy that allows every capability on each path.
func (s *Server) Policy(t testing.TB, name string, paths ...string) {
	t.Helper()
	var b strings.Builder
	for _, p := range paths {
		fmt.Fprintf(&b, "path %q { capabilities = [\"create\", \"read\", \"update\", \"patch\", \"delete\", \"list\"] }\n", p)
	}
	if err := s.api.Sys().PutPolicyWithContext(context.Background(), name, b.String()); err != nil {
		t.Fatalf("cannot write policy %s: %v", name, err)
	}
}

// Token creates a token with the policies.
func (s *Server) Token(t testing.TB, policies ...string) string {
	t.Helper()
	sec, err := s.api.Auth().Token().CreateWithContext(context.Background(), &vaultapi.TokenCreateRequest{Policies: policies, NoParent: true})
	if err != nil {
		t.Fatalf("cannot create token: %v", err)
	}
	return sec.Auth.ClientToken
}

func (s *Server) enableAuth(t testing.TB, path, typ string) {
	t.Helper()
	err := s.api.Sys().EnableAuthWithOptionsWithContext(context.Background(), path, &vaultapi.EnableAuthOptions{Type: typ})
	if err != nil && !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("cannot enable %s auth at %s: %v", typ, path, err)
	}
}

func (s *Server) write(t testing.TB, path string, data map[string]any) *vaultapi.Secret {
	t.Helper()
	sec, err := s.api.Logical().WriteWithContext(context.Background(), path, data)
	if err != nil {
		t.Fatalf("cannot write %s: %v", path, err)
	}
	return sec
}

// AppRole enables AppRole auth at mount (once), creates role with the
// policies and returns its role ID and a new secret ID.
func (s *Server) AppRole(t testing.TB, mount, role string, policies ...string) (roleID, secretID string) {
	t.Helper()
	s.enableAuth(t, mount, "approle")
	s.write(t, "auth/"+mount+"/role/"+role, map[string]any{"token_policies": policies, "token_ttl": "10m"})
	r, err := s.api.Logical().ReadWithContext(context.Background(), "auth/"+mount+"/role/"+role+"/role-id")
	if err != nil || r == nil {
		t.Fatalf("cannot read role id of %s: %v", role, err)
	}
	sec := s.write(t, "auth/"+mount+"/role/"+role+"/secret-id", nil)
	return r.Data["role_id"].(string), sec.Data["secret_id"].(string)
}

// KubernetesAuth enables Kubernetes auth at mount (once) against the API
// server of cfg: Vault checks login tokens with that server's TokenReview,
// authenticating with the token of a reviewer ServiceAccount bound to
// system:auth-delegator (created in namespace ns).
func (s *Server) KubernetesAuth(t testing.TB, cfg *rest.Config, mount, ns string) {
	t.Helper()
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(cfg)
	EnsureNamespace(t, cs, ns)
	reviewer := "vault-token-reviewer"
	EnsureServiceAccount(t, cs, ns, reviewer)
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "vaulttest-" + ns + "-reviewer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: reviewer, Namespace: ns}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	jwt := ServiceAccountToken(t, cs, ns, reviewer, nil, 3600)
	s.enableAuth(t, mount, "kubernetes")
	s.write(t, "auth/"+mount+"/config", map[string]any{
		"kubernetes_host":      cfg.Host,
		"kubernetes_ca_cert":   string(cfg.CAData),
		"token_reviewer_jwt":   jwt,
		"disable_local_ca_jwt": true,
	})
}

// KubernetesRole creates a role of the Kubernetes auth at mount for the
// ServiceAccount ns/sa, tokens with audience, and the policies.
func (s *Server) KubernetesRole(t testing.TB, mount, role, ns, sa, audience string, policies ...string) {
	t.Helper()
	s.write(t, "auth/"+mount+"/role/"+role, map[string]any{
		"bound_service_account_names":      []string{sa},
		"bound_service_account_namespaces": []string{ns},
		"audience":                         audience,
		"token_policies":                   policies,
		"token_ttl":                        "10m",
	})
}

// KubernetesRoleFor is KubernetesRole binding several namespaces and
// ServiceAccount names.
func (s *Server) KubernetesRoleFor(t testing.TB, mount, role string, namespaces, sas []string, audience string, policies ...string) {
	t.Helper()
	s.write(t, "auth/"+mount+"/role/"+role, map[string]any{
		"bound_service_account_names":      sas,
		"bound_service_account_namespaces": namespaces,
		"audience":                         audience,
		"token_policies":                   policies,
		"token_ttl":                        "10m",
	})
}

// EnsureNamespace creates ns if it does not exist.
func EnsureNamespace(t testing.TB, cs kubernetes.Interface, ns string) {
	t.Helper()
	_, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// EnsureServiceAccount creates ns/name if it does not exist.
func EnsureServiceAccount(t testing.TB, cs kubernetes.Interface, ns, name string) {
	t.Helper()
	_, err := cs.CoreV1().ServiceAccounts(ns).Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// ServiceAccountToken requests a token for ns/name (TokenRequest API).
func ServiceAccountToken(t testing.TB, cs kubernetes.Interface, ns, name string, audiences []string, seconds int64) string {
	t.Helper()
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: &seconds},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("cannot request a token for ServiceAccount %s/%s: %v", ns, name, err)
	}
	return tr.Status.Token
}

// Put writes a KV v2 secret at mount/key.
func (s *Server) Put(t testing.TB, mount, key string, data map[string]any) {
	t.Helper()
	if _, err := s.api.KVv2(mount).Put(context.Background(), key, data); err != nil {
		t.Fatalf("cannot write %s/%s: %v", mount, key, err)
	}
}

// Get reads a KV v2 secret at mount/key (nil when missing).
func (s *Server) Get(t testing.TB, mount, key string) map[string]any {
	t.Helper()
	sec, err := s.api.KVv2(mount).Get(context.Background(), key)
	if err != nil {
		if strings.Contains(err.Error(), "secret not found") {
			return nil
		}
		t.Fatalf("cannot read %s/%s: %v", mount, key, err)
	}
	return sec.Data
}

// Metadata reads a KV v2 secret's custom_metadata.
func (s *Server) Metadata(t testing.TB, mount, key string) map[string]any {
	t.Helper()
	m, err := s.api.KVv2(mount).GetMetadata(context.Background(), key)
	if err != nil {
		if strings.Contains(err.Error(), "secret not found") {
			return nil
		}
		t.Fatalf("cannot read metadata of %s/%s: %v", mount, key, err)
	}
	return m.CustomMetadata
}

func suffix() string {
	return fmt.Sprintf("%x", time.Now().UnixNano()&0xffffffff)
}

package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/strata-dev/strata/internal/kit/egress"
	"github.com/strata-dev/strata/internal/secrets/provider"
)

// KVVersion is the version of Vault's KV secrets engine at a mount.
type KVVersion string

// KV engine versions.
const (
	KVv1 KVVersion = "v1"
	KVv2 KVVersion = "v2"
)

// Config says which Vault to talk to and how to log in.
type Config struct {
	// Server is Vault's address, e.g. https://vault.example:8200.
	Server string
	// Path is the mount path of the KV engine, e.g. "secret".
	Path string
	// Version of the KV engine: v1 or v2 (empty is v2).
	Version KVVersion
	// Namespace is the Vault Enterprise namespace (optional).
	Namespace string
	// CABundle is a PEM bundle that verifies Vault's certificate (optional).
	CABundle []byte
	// Auth is how the client logs in; exactly one method is set.
	Auth Auth
	// Timeout bounds one HTTP request (default 10s).
	Timeout time.Duration
	// Egress is the networks the client may not connect to.
	Egress egress.Policy
}

// Auth is one way to log in to Vault.
type Auth struct {
	// Token is a Vault token used as is.
	Token string
	// AppRole logs in with a role ID and a secret ID.
	AppRole *AppRole
	// Kubernetes logs in with a ServiceAccount token.
	Kubernetes *Kubernetes
}

// AppRole is Vault's AppRole auth method.
type AppRole struct {
	// Path where the method is mounted (default "approle").
	Path string
	// RoleID and SecretID are the role's credentials.
	RoleID, SecretID string
}

// Kubernetes is Vault's Kubernetes auth method: a ServiceAccount token that
// Vault checks with the API server's TokenReview.
type Kubernetes struct {
	// MountPath where the method is mounted (default "kubernetes").
	MountPath string
	// Role to log in as.
	Role string
	// ServiceAccountToken returns the token to present (for example from
	// the TokenRequest API with the audience Vault's role expects).
	ServiceAccountToken func(ctx context.Context) (string, error)
}

// Client is a provider.Client for one Vault KV mount.
type Client struct {
	cfg   Config
	mount string
	api   *vaultapi.Client

	mu       sync.Mutex
	token    string // the token in use; empty until logged in
	loggedIn bool   // the token came from a login (so Close revokes it)
}

var (
	_ provider.Client      = (*Client)(nil)
	_ provider.OwnedWriter = (*Client)(nil)
)

// New returns a client for cfg. It does not contact Vault: the first call
// logs in.
func New(cfg Config) (*Client, error) {
	if cfg.Server == "" {
		return nil, errors.New("vault server address is empty")
	}
	if cfg.Version == "" {
		cfg.Version = KVv2
	}
	if cfg.Version != KVv1 && cfg.Version != KVv2 {
		return nil, fmt.Errorf("vault %s: KV version %q is neither v1 nor v2", cfg.Server, cfg.Version)
	}
	mount := strings.Trim(cfg.Path, "/")
	if mount == "" {
		return nil, fmt.Errorf("vault %s: the KV mount path is empty", cfg.Server)
	}
	n := 0
	if cfg.Auth.Token != "" {
		n++
	}
	if cfg.Auth.AppRole != nil {
		n++
	}
	if cfg.Auth.Kubernetes != nil {
		n++
	}
	if n != 1 {
		return nil, fmt.Errorf("vault %s: exactly one auth method (token, appRole, kubernetes) must be set, found %d", cfg.Server, n)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	// Not vaultapi.DefaultConfig: it reads VAULT_* variables of the
	// controller's environment, which must not change what a store does.
	vc := &vaultapi.Config{
		Address:    cfg.Server,
		HttpClient: &http.Client{Timeout: cfg.Timeout, Transport: cfg.Egress.Guard(http.DefaultTransport.(*http.Transport).Clone())},
		MaxRetries: 0,
		Timeout:    cfg.Timeout,
	}
	if len(cfg.CABundle) > 0 {
		if err := vc.ConfigureTLS(&vaultapi.TLSConfig{CACertBytes: cfg.CABundle}); err != nil {
			return nil, fmt.Errorf("vault %s: invalid caBundle: %w", cfg.Server, err)
		}
	}
	ac, err := vaultapi.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("vault %s: %w", cfg.Server, err)
	}
	ac.ClearToken() // NewClient takes VAULT_TOKEN from the environment
	ac.ClearNamespace()
	if cfg.Namespace != "" {
		ac.SetNamespace(cfg.Namespace)
	}
	return &Client{cfg: cfg, mount: mount, api: ac}, nil
}

// String names the server and mount in messages.
func (c *Client) String() string { return fmt.Sprintf("vault %s mount %q", c.cfg.Server, c.mount) }

// login sets a token: the configured one, or a new one from the auth method.
func (c *Client) login(ctx context.Context, force bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && !force {
		return nil
	}
	a := c.cfg.Auth
	switch {
	case a.Token != "":
		c.token = a.Token
	case a.AppRole != nil:
		path := "auth/" + orDefault(strings.Trim(a.AppRole.Path, "/"), "approle") + "/login"
		tok, err := c.loginAt(ctx, path, map[string]any{"role_id": a.AppRole.RoleID, "secret_id": a.AppRole.SecretID})
		if err != nil {
			return err
		}
		c.token, c.loggedIn = tok, true
	case a.Kubernetes != nil:
		if a.Kubernetes.ServiceAccountToken == nil {
			return fmt.Errorf("vault %s: kubernetes auth has no ServiceAccount token source", c.cfg.Server)
		}
		jwt, err := a.Kubernetes.ServiceAccountToken(ctx)
		if err != nil {
			return fmt.Errorf("vault %s: cannot get a ServiceAccount token for kubernetes auth: %w", c.cfg.Server, err)
		}
		path := "auth/" + orDefault(strings.Trim(a.Kubernetes.MountPath, "/"), "kubernetes") + "/login"
		tok, err := c.loginAt(ctx, path, map[string]any{"role": a.Kubernetes.Role, "jwt": jwt})
		if err != nil {
			return err
		}
		c.token, c.loggedIn = tok, true
	}
	c.api.SetToken(c.token)
	return nil
}

func (c *Client) loginAt(ctx context.Context, path string, body map[string]any) (string, error) {
	// A login request carries no token.
	lc, err := c.api.CloneWithHeaders()
	if err != nil {
		return "", fmt.Errorf("vault %s: %w", c.cfg.Server, err)
	}
	lc.ClearToken()
	s, err := lc.Logical().WriteWithContext(ctx, path, body)
	if err != nil {
		return "", fmt.Errorf("vault %s: cannot log in at %s: %w", c.cfg.Server, path, describe(err))
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return "", fmt.Errorf("vault %s: login at %s returned no token", c.cfg.Server, path)
	}
	return s.Auth.ClientToken, nil
}

// do runs f with a token, logging in again once when a login token was
// refused (it may have expired).
func (c *Client) do(ctx context.Context, f func() error) error {
	if err := c.login(ctx, false); err != nil {
		return err
	}
	err := f()
	var re *vaultapi.ResponseError
	if err != nil && c.cfg.Auth.Token == "" && errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
		if lerr := c.login(ctx, true); lerr != nil {
			return lerr
		}
		err = f()
	}
	return err
}

// describe turns a Vault API error into a short message without the
// response body's raw text (which a misbehaving server could fill with
// anything) beyond Vault's own error strings.
func describe(err error) error {
	var re *vaultapi.ResponseError
	if errors.As(err, &re) {
		msg := strings.Join(re.Errors, "; ")
		if re.RawError || len(msg) > 200 {
			msg = http.StatusText(re.StatusCode)
		}
		if msg == "" {
			msg = http.StatusText(re.StatusCode)
		}
		return &apiError{code: re.StatusCode, msg: msg, err: err}
	}
	return err
}

type apiError struct {
	code int
	msg  string
	err  error
}

func (e *apiError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.code, e.msg) }
func (e *apiError) Unwrap() error { return e.err }

func statusOf(err error) int {
	var re *vaultapi.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// Validate logs in and looks the token up; it reads no secret.
func (c *Client) Validate(ctx context.Context) error {
	return c.do(ctx, func() error {
		if _, err := c.api.Auth().Token().LookupSelfWithContext(ctx); err != nil {
			return fmt.Errorf("vault %s: token lookup failed: %w", c.cfg.Server, describe(err))
		}
		return nil
	})
}

// Close revokes a token the client logged in for.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.loggedIn || c.token == "" {
		return nil
	}
	err := c.api.Auth().Token().RevokeSelfWithContext(ctx, "")
	c.token, c.loggedIn = "", false
	c.api.ClearToken()
	if err != nil {
		return fmt.Errorf("vault %s: cannot revoke the login token: %w", c.cfg.Server, describe(err))
	}
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

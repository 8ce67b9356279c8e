package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/strata-dev/strata/internal/secrets/provider"
)

// Client reads Secrets of one namespace with the store's credentials.
type Client struct {
	server    string
	namespace string
	cs        kubernetes.Interface
}

// New is the provider.Constructor of the kubernetes store.
func New(ctx context.Context, store provider.Store, kube provider.Kube) (provider.Client, error) {
	p := store.Spec.Provider.Kubernetes
	if p == nil {
		return nil, fmt.Errorf("%s has no kubernetes provider: %w", store, provider.ErrInvalidConfig)
	}
	var cfg *rest.Config
	if p.Server.URL == "" {
		cfg = kube.LocalServer()
	} else {
		ca, err := kube.CABundle(ctx, p.Server.CABundle, p.Server.CAProvider)
		if err != nil {
			return nil, err
		}
		cfg = &rest.Config{Host: p.Server.URL, TLSClientConfig: rest.TLSClientConfig{CAData: ca}}
		if !store.Egress.Empty() {
			// client-go's own default proxy, so the manager's proxy
			// stays reachable.
			cfg.Proxy = http.ProxyFromEnvironment
			cfg.Dial = store.Egress.DialContext(cfg.Proxy)
		}
	}
	switch {
	case p.Auth.Token != nil:
		tok, err := kube.SecretKey(ctx, p.Auth.Token.BearerToken)
		if err != nil {
			return nil, err
		}
		cfg.BearerToken = strings.TrimSpace(string(tok))
	case p.Auth.ServiceAccount != nil:
		tok, err := kube.ServiceAccountToken(ctx, *p.Auth.ServiceAccount)
		if err != nil {
			return nil, err
		}
		cfg.BearerToken = tok
	default:
		return nil, fmt.Errorf("%s: spec.provider.kubernetes.auth needs token or serviceAccount: %w", store, provider.ErrInvalidConfig)
	}
	// The store's rate limit bounds requests; client-go's own is lifted.
	cfg.QPS, cfg.Burst = 1000, 1000
	cfg.UserAgent = "strata-secrets"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", store, err, provider.ErrInvalidConfig)
	}
	ns := p.RemoteNamespace
	if ns == "" {
		ns = "default"
	}
	return &Client{server: cfg.Host, namespace: ns, cs: cs}, nil
}

func (c *Client) where() string {
	return fmt.Sprintf("namespace %q of %s", c.namespace, c.server)
}

func (c *Client) get(ctx context.Context, ref provider.Ref) (*corev1.Secret, error) {
	s, err := c.cs.CoreV1().Secrets(c.namespace).Get(ctx, ref.Key, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, provider.NotFound(ref)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read Secret %q in %s: %w", ref.Key, c.where(), describe(err))
	}
	return s, nil
}

// describe keeps the API server's status reason and message (they never
// carry a Secret's data).
func describe(err error) error {
	if s, ok := err.(apierrors.APIStatus); ok {
		st := s.Status()
		return fmt.Errorf("%s: %s", st.Reason, st.Message)
	}
	return err
}

func encode(data map[string][]byte) ([]byte, error) {
	m := make(map[string]string, len(data))
	for k, v := range data {
		m[k] = string(v)
	}
	return json.Marshal(m)
}

// GetSecret returns one key of a Secret, or the Secret's only key, or all
// of its data as a JSON object.
func (c *Client) GetSecret(ctx context.Context, ref provider.Ref) ([]byte, error) {
	s, err := c.get(ctx, ref)
	if err != nil {
		return nil, err
	}
	if ref.Property != "" {
		v, ok := s.Data[ref.Property]
		if !ok {
			return nil, provider.NotFound(ref)
		}
		return v, nil
	}
	if len(s.Data) == 1 {
		for _, v := range s.Data {
			return v, nil
		}
	}
	return encode(s.Data)
}

// GetSecretMap returns a Secret's data.
func (c *Client) GetSecretMap(ctx context.Context, ref provider.Ref) (map[string][]byte, error) {
	s, err := c.get(ctx, ref)
	if err != nil {
		return nil, err
	}
	if ref.Property != "" {
		v, ok := s.Data[ref.Property]
		if !ok {
			return nil, provider.NotFound(ref)
		}
		var m map[string]any
		if err := json.Unmarshal(v, &m); err != nil {
			return nil, fmt.Errorf("key %q property %q is not a JSON object", ref.Key, ref.Property)
		}
		out := make(map[string][]byte, len(m))
		for k, x := range m {
			if s, ok := x.(string); ok {
				out[k] = []byte(s)
				continue
			}
			b, _ := json.Marshal(x)
			out[k] = b
		}
		return out, nil
	}
	return s.Data, nil
}

// GetAllSecrets returns every Secret whose name matches and whose labels
// carry the tags, each as a JSON object of its data.
func (c *Client) GetAllSecrets(ctx context.Context, find provider.Find) (map[string][]byte, error) {
	var re *regexp.Regexp
	if find.NameRegexp != "" {
		r, err := regexp.Compile(find.NameRegexp)
		if err != nil {
			return nil, fmt.Errorf("find name regexp %q: %w", find.NameRegexp, err)
		}
		re = r
	}
	l, err := c.cs.CoreV1().Secrets(c.namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(find.Tags).String()})
	if err != nil {
		return nil, fmt.Errorf("cannot list Secrets in %s: %w", c.where(), describe(err))
	}
	out := map[string][]byte{}
	for _, s := range l.Items {
		if (find.Path != "" && !strings.HasPrefix(s.Name, find.Path)) || (re != nil && !re.MatchString(s.Name)) {
			continue
		}
		b, err := encode(s.Data)
		if err != nil {
			return nil, err
		}
		out[s.Name] = b
	}
	return out, nil
}

// PushSecret writes value into key ref.Property (default "value") of
// Secret ref.Key, creating it when missing.
func (c *Client) PushSecret(ctx context.Context, ref provider.PushRef, value []byte) error {
	prop := ref.Property
	if prop == "" {
		prop = "value"
	}
	secrets := c.cs.CoreV1().Secrets(c.namespace)
	s, err := secrets.Get(ctx, ref.Key, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		s = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: ref.Key, Namespace: c.namespace}, Data: map[string][]byte{prop: value}}
		if _, err := secrets.Create(ctx, s, metav1.CreateOptions{FieldManager: "strata-secrets"}); err != nil {
			return fmt.Errorf("cannot create Secret %q in %s: %w", ref.Key, c.where(), describe(err))
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read Secret %q in %s: %w", ref.Key, c.where(), describe(err))
	}
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	s.Data[prop] = value
	if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{FieldManager: "strata-secrets"}); err != nil {
		return fmt.Errorf("cannot update Secret %q in %s: %w", ref.Key, c.where(), describe(err))
	}
	return nil
}

// DeleteSecret removes what PushSecret wrote: the key, and the Secret when
// it has no key left.
func (c *Client) DeleteSecret(ctx context.Context, ref provider.PushRef) error {
	prop := ref.Property
	if prop == "" {
		prop = "value"
	}
	secrets := c.cs.CoreV1().Secrets(c.namespace)
	s, err := secrets.Get(ctx, ref.Key, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read Secret %q in %s: %w", ref.Key, c.where(), describe(err))
	}
	delete(s.Data, prop)
	if len(s.Data) == 0 {
		err = secrets.Delete(ctx, ref.Key, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &s.UID}})
	} else {
		_, err = secrets.Update(ctx, s, metav1.UpdateOptions{FieldManager: "strata-secrets"})
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cannot delete key %q of Secret %q in %s: %w", prop, ref.Key, c.where(), describe(err))
	}
	return nil
}

// Validate asks the API server whether the store's credentials may read
// Secrets in the remote namespace (a SelfSubjectAccessReview: no Secret is
// read).
func (c *Client) Validate(ctx context.Context) error {
	r, err := c.cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: c.namespace, Verb: "get", Resource: "secrets",
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("cannot reach %s: %w", c.server, describe(err))
	}
	if !r.Status.Allowed {
		return fmt.Errorf("the store's credentials may not read Secrets in %s", c.where())
	}
	return nil
}

// Close does nothing: the client holds no session.
func (c *Client) Close(context.Context) error { return nil }

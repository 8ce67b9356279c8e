package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/template"
	"time"

	"k8s.io/client-go/util/jsonpath"

	"github.com/strata-dev/strata/internal/secrets/provider"
)

// maxBody bounds a response.
const maxBody = 1 << 20

// Client calls one webhook.
type Client struct {
	store    string
	method   string
	urlText  string
	url      *template.Template
	body     *template.Template
	headers  map[string]*template.Template
	jsonPath *jsonpath.JSONPath
	secrets  map[string]map[string]string
	http     *http.Client
}

// New is the provider.Constructor of the webhook store.
func New(ctx context.Context, store provider.Store, kube provider.Kube) (provider.Client, error) {
	p := store.Spec.Provider.Webhook
	if p == nil {
		return nil, fmt.Errorf("%s has no webhook provider: %w", store, provider.ErrInvalidConfig)
	}
	invalid := func(field string, err error) error {
		return fmt.Errorf("%s: spec.provider.webhook.%s: %v: %w", store, field, err, provider.ErrInvalidConfig)
	}
	c := &Client{store: store.String(), method: p.Method, urlText: p.URL, headers: map[string]*template.Template{}, secrets: map[string]map[string]string{}}
	if c.method == "" {
		c.method = http.MethodGet
	}
	var err error
	if c.url, err = template.New("url").Option("missingkey=error").Parse(p.URL); err != nil {
		return nil, invalid("url", err)
	}
	if c.body, err = template.New("body").Option("missingkey=error").Parse(p.Body); err != nil {
		return nil, invalid("body", err)
	}
	for k, v := range p.Headers {
		if c.headers[k], err = template.New(k).Option("missingkey=error").Parse(v); err != nil {
			return nil, invalid("headers["+k+"]", err)
		}
	}
	if jp := p.Result.JSONPath; jp != "" {
		if !strings.HasPrefix(jp, "{") {
			jp = "{" + jp + "}"
		}
		c.jsonPath = jsonpath.New("result").AllowMissingKeys(true)
		if err := c.jsonPath.Parse(jp); err != nil {
			return nil, invalid("result.jsonPath", err)
		}
	}
	for _, s := range p.Secrets {
		data, err := kube.SecretData(ctx, s.SecretRef)
		if err != nil {
			return nil, err
		}
		m := make(map[string]string, len(data))
		for k, v := range data {
			m[k] = string(v)
		}
		c.secrets[s.Name] = m
	}
	timeout := 10 * time.Second
	if p.Timeout != nil && p.Timeout.Duration > 0 {
		timeout = p.Timeout.Duration
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	ca, err := kube.CABundle(ctx, p.CABundle, p.CAProvider)
	if err != nil {
		return nil, err
	}
	if len(ca) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, invalid("caBundle", fmt.Errorf("no PEM certificate found"))
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	c.http = &http.Client{Timeout: timeout, Transport: store.Egress.Guard(tr),
		// Redirects could carry credentials elsewhere: refuse them.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return c, nil
}

func render(t *template.Template, data map[string]any) (string, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

// call requests ref and returns the selected result, or nil when the
// endpoint or the jsonPath has nothing for it.
func (c *Client) call(ctx context.Context, ref provider.Ref) (any, []byte, error) {
	data := map[string]any{"remoteRef": map[string]string{"key": ref.Key, "property": ref.Property, "version": ref.Version}}
	for k, v := range c.secrets {
		data[k] = v
	}
	fail := func(format string, a ...any) error {
		return fmt.Errorf("webhook %s %s: %s", c.method, c.urlText, fmt.Sprintf(format, a...))
	}
	u, err := render(c.url, data)
	if err != nil {
		return nil, nil, fail("url template: %v", err)
	}
	body, err := render(c.body, data)
	if err != nil {
		return nil, nil, fail("body template: %v", err)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, u, strings.NewReader(body))
	if err != nil {
		return nil, nil, fail("invalid request")
	}
	for k, t := range c.headers {
		v, err := render(t, data)
		if err != nil {
			return nil, nil, fail("header %s template: %v", k, err)
		}
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// Name the cause without the rendered URL.
		cause := err
		for {
			if ue, ok := cause.(interface{ Unwrap() error }); ok && ue.Unwrap() != nil {
				cause = ue.Unwrap()
				continue
			}
			break
		}
		return nil, nil, fail("unreachable: %v", cause)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, nil, fail("cannot read the response: %v", err)
	}
	if len(raw) > maxBody {
		return nil, nil, fail("response larger than %d bytes", maxBody)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, nil, provider.NotFound(ref)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return nil, nil, fail("HTTP %d", resp.StatusCode)
	}
	if c.jsonPath == nil {
		var v any
		if json.Unmarshal(raw, &v) == nil {
			return v, raw, nil
		}
		return nil, raw, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, nil, fail("response is not JSON")
	}
	res, err := c.jsonPath.FindResults(v)
	if err != nil || len(res) == 0 || len(res[0]) == 0 {
		return nil, nil, provider.NotFound(ref)
	}
	x := res[0][0].Interface()
	if s, ok := x.(string); ok {
		return x, []byte(s), nil
	}
	b, err := json.Marshal(x)
	if err != nil {
		return nil, nil, fail("result cannot be encoded")
	}
	return x, b, nil
}

func toBytes(x any) []byte {
	if s, ok := x.(string); ok {
		return []byte(s)
	}
	b, _ := json.Marshal(x)
	return b
}

// GetSecret returns the selected result, or its field ref.Property.
func (c *Client) GetSecret(ctx context.Context, ref provider.Ref) ([]byte, error) {
	v, raw, err := c.call(ctx, ref)
	if err != nil {
		return nil, err
	}
	if ref.Property == "" {
		return raw, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, provider.NotFound(ref)
	}
	f, ok := m[ref.Property]
	if !ok {
		return nil, provider.NotFound(ref)
	}
	return toBytes(f), nil
}

// GetSecretMap returns the fields of a JSON object result.
func (c *Client) GetSecretMap(ctx context.Context, ref provider.Ref) (map[string][]byte, error) {
	v, _, err := c.call(ctx, ref)
	if err != nil {
		return nil, err
	}
	if ref.Property != "" {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, provider.NotFound(ref)
		}
		if v, ok = m[ref.Property]; !ok {
			return nil, provider.NotFound(ref)
		}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("webhook %s %s: result for key %q is not a JSON object, so it cannot be extracted", c.method, c.urlText, ref.Key)
	}
	out := make(map[string][]byte, len(m))
	for k, x := range m {
		out[k] = toBytes(x)
	}
	return out, nil
}

// GetAllSecrets is not supported: a webhook cannot list.
func (c *Client) GetAllSecrets(context.Context, provider.Find) (map[string][]byte, error) {
	return nil, fmt.Errorf("find on %s: %w", c.store, provider.ErrNotSupported)
}

// PushSecret is not supported.
func (c *Client) PushSecret(context.Context, provider.PushRef, []byte) error {
	return fmt.Errorf("push to %s: %w", c.store, provider.ErrNotSupported)
}

// DeleteSecret is not supported.
func (c *Client) DeleteSecret(context.Context, provider.PushRef) error {
	return fmt.Errorf("delete from %s: %w", c.store, provider.ErrNotSupported)
}

// Validate checks what can be checked without a key: the templates parsed
// and the credentials Secrets were read when the client was built.
func (c *Client) Validate(context.Context) error { return nil }

// Close releases idle connections.
func (c *Client) Close(context.Context) error {
	c.http.CloseIdleConnections()
	return nil
}

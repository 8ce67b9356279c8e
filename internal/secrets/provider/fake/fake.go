package fake

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/secrets/provider"
)

// Client serves a fake store's data.
type Client struct {
	store string
	data  []secretsv1.FakeProviderData
}

// New is the provider.Constructor of the fake store.
func New(_ context.Context, store provider.Store, _ provider.Kube) (provider.Client, error) {
	f := store.Spec.Provider.Fake
	if f == nil {
		return nil, fmt.Errorf("%s has no fake provider: %w", store, provider.ErrInvalidConfig)
	}
	return &Client{store: store.String(), data: append([]secretsv1.FakeProviderData(nil), f.Data...)}, nil
}

// entry returns the data entry for ref: the one with ref's version, or for
// an empty version the one without a version, else the last one of the key.
func (c *Client) entry(ref provider.Ref) (*secretsv1.FakeProviderData, bool) {
	var last *secretsv1.FakeProviderData
	for i := range c.data {
		d := &c.data[i]
		if d.Key != ref.Key {
			continue
		}
		if d.Version == ref.Version {
			return d, true
		}
		last = d
	}
	if ref.Version == "" && last != nil {
		return last, true
	}
	return nil, false
}

// fields returns the structured value of an entry, or nil when it has none.
func fields(d *secretsv1.FakeProviderData) map[string][]byte {
	if len(d.ValueMap) > 0 {
		m := make(map[string][]byte, len(d.ValueMap))
		for k, v := range d.ValueMap {
			m[k] = []byte(v)
		}
		return m
	}
	var obj map[string]any
	if json.Unmarshal([]byte(d.Value), &obj) != nil {
		return nil
	}
	m := make(map[string][]byte, len(obj))
	for k, v := range obj {
		if s, ok := v.(string); ok {
			m[k] = []byte(s)
			continue
		}
		b, _ := json.Marshal(v)
		m[k] = b
	}
	return m
}

// GetSecret returns one value.
func (c *Client) GetSecret(_ context.Context, ref provider.Ref) ([]byte, error) {
	d, ok := c.entry(ref)
	if !ok {
		return nil, provider.NotFound(ref)
	}
	if ref.Property == "" {
		if len(d.ValueMap) > 0 {
			return json.Marshal(d.ValueMap)
		}
		return []byte(d.Value), nil
	}
	v, ok := fields(d)[ref.Property]
	if !ok {
		return nil, provider.NotFound(ref)
	}
	return v, nil
}

// GetSecretMap returns every field of a structured value.
func (c *Client) GetSecretMap(_ context.Context, ref provider.Ref) (map[string][]byte, error) {
	d, ok := c.entry(ref)
	if !ok {
		return nil, provider.NotFound(ref)
	}
	m := fields(d)
	if m == nil {
		return nil, fmt.Errorf("key %q is not a JSON object or a valueMap, so it cannot be extracted", ref.Key)
	}
	if ref.Property != "" {
		v, ok := m[ref.Property]
		if !ok {
			return nil, provider.NotFound(ref)
		}
		return fields(&secretsv1.FakeProviderData{Value: string(v)}), nil
	}
	return m, nil
}

// GetAllSecrets returns the latest value of every key Find selects.
func (c *Client) GetAllSecrets(ctx context.Context, find provider.Find) (map[string][]byte, error) {
	if len(find.Tags) > 0 {
		return nil, fmt.Errorf("find by tags: %w", provider.ErrNotSupported)
	}
	var re *regexp.Regexp
	if find.NameRegexp != "" {
		r, err := regexp.Compile(find.NameRegexp)
		if err != nil {
			return nil, fmt.Errorf("find name regexp %q: %w", find.NameRegexp, err)
		}
		re = r
	}
	keys := map[string]bool{}
	for _, d := range c.data {
		if find.Path != "" && !strings.HasPrefix(d.Key, find.Path) {
			continue
		}
		if re != nil && !re.MatchString(d.Key) {
			continue
		}
		keys[d.Key] = true
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make(map[string][]byte, len(names))
	for _, k := range names {
		v, err := c.GetSecret(ctx, provider.Ref{Key: k})
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

// PushSecret is not supported: a fake store's data is its spec.
func (c *Client) PushSecret(context.Context, provider.PushRef, []byte) error {
	return fmt.Errorf("push to %s: %w", c.store, provider.ErrNotSupported)
}

// DeleteSecret is not supported: a fake store's data is its spec.
func (c *Client) DeleteSecret(context.Context, provider.PushRef) error {
	return fmt.Errorf("delete from %s: %w", c.store, provider.ErrNotSupported)
}

// Validate always succeeds: the data is in the spec.
func (c *Client) Validate(context.Context) error { return nil }

// Close does nothing.
func (c *Client) Close(context.Context) error { return nil }

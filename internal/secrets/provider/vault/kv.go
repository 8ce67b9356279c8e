package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/strata-dev/strata/internal/secrets/provider"
)

// maxFindKeys bounds how many keys one find lists, so a store with a huge
// tree cannot make one ExternalSecret read all of it.
const maxFindKeys = 1000

// ownerKeyPrefix is the KV v2 custom_metadata key that records which writer
// pushed a secret; "ownerKeyPrefix.PROPERTY" records the writer of one
// property.
const ownerKeyPrefix = "strata.dev/pushed-by"

func ownerKey(property string) string {
	if property == "" {
		return ownerKeyPrefix
	}
	return ownerKeyPrefix + "." + property
}

// secret is one KV secret as read.
type secret struct {
	data    map[string]any
	version int            // v2 only
	custom  map[string]any // v2 custom_metadata
	exists  bool           // v2: metadata exists (data may be deleted)
}

// key normalises a remote key: relative to the mount, which may also be
// spelt as a prefix ("secret/app" on mount "secret").
func (c *Client) key(k string) (string, error) {
	k = strings.Trim(k, "/")
	k = strings.TrimPrefix(k, c.mount+"/")
	if c.cfg.Version == KVv2 {
		k = strings.TrimPrefix(k, "data/")
	}
	if k == "" {
		return "", fmt.Errorf("%s: empty key", c)
	}
	return k, nil
}

func (c *Client) dataPath(key string) string {
	if c.cfg.Version == KVv2 {
		return c.mount + "/data/" + key
	}
	return c.mount + "/" + key
}

// read fetches a secret; a missing one (or a deleted latest version) is a
// secret with nil data.
func (c *Client) read(ctx context.Context, key, version string) (*secret, error) {
	p := c.dataPath(key)
	var query map[string][]string
	if version != "" {
		if c.cfg.Version != KVv2 {
			return nil, fmt.Errorf("%s: key %q: versions need KV v2: %w", c, key, provider.ErrNotSupported)
		}
		if _, err := strconv.Atoi(version); err != nil {
			return nil, fmt.Errorf("%s: key %q: version %q is not a number", c, key, version)
		}
		query = map[string][]string{"version": {version}}
	}
	out := &secret{}
	err := c.do(ctx, func() error {
		s, err := c.api.Logical().ReadWithDataWithContext(ctx, p, query)
		if err != nil {
			if statusOf(err) == http.StatusNotFound {
				return nil
			}
			return fmt.Errorf("%s: cannot read %s: %w", c, p, describe(err))
		}
		if s == nil || s.Data == nil {
			return nil
		}
		if c.cfg.Version == KVv1 {
			out.data, out.exists = s.Data, true
			return nil
		}
		out.exists = true
		if d, ok := s.Data["data"].(map[string]any); ok {
			out.data = d
		}
		if m, ok := s.Data["metadata"].(map[string]any); ok {
			if v, ok := m["version"].(json.Number); ok {
				n, _ := v.Int64()
				out.version = int(n)
			}
			if cm, ok := m["custom_metadata"].(map[string]any); ok {
				out.custom = cm
			}
		}
		return nil
	})
	return out, err
}

// current reads a secret's latest data and, on KV v2, its metadata (which
// outlives a deleted latest version, and whose current_version is what a
// check-and-set write must name).
func (c *Client) current(ctx context.Context, key string) (*secret, error) {
	s, err := c.read(ctx, key, "")
	if err != nil || c.cfg.Version == KVv1 {
		return s, err
	}
	s.exists, s.version, s.custom, err = c.metadata(ctx, key)
	return s, err
}

// metadata reads a KV v2 secret's metadata: whether it exists, its current
// version and custom_metadata.
func (c *Client) metadata(ctx context.Context, key string) (exists bool, current int, custom map[string]any, err error) {
	p := c.mount + "/metadata/" + key
	err = c.do(ctx, func() error {
		s, err := c.api.Logical().ReadWithContext(ctx, p)
		if err != nil {
			if statusOf(err) == http.StatusNotFound {
				return nil
			}
			return fmt.Errorf("%s: cannot read %s: %w", c, p, describe(err))
		}
		if s == nil || s.Data == nil {
			return nil
		}
		exists = true
		if v, ok := s.Data["current_version"].(json.Number); ok {
			n, _ := v.Int64()
			current = int(n)
		}
		custom, _ = s.Data["custom_metadata"].(map[string]any)
		return nil
	})
	return exists, current, custom, err
}

// encode turns one field's value into bytes: strings as they are, anything
// else as JSON.
func encode(v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return []byte(x), nil
	case json.Number:
		return []byte(x.String()), nil
	case nil:
		return nil, nil
	}
	return json.Marshal(v)
}

// property finds a field: a top-level key, else a dotted path into nested
// objects.
func property(data map[string]any, prop string) (any, bool) {
	if v, ok := data[prop]; ok {
		return v, true
	}
	var cur any = data
	for _, part := range strings.Split(prop, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// GetSecret returns one property, or the whole secret as JSON.
func (c *Client) GetSecret(ctx context.Context, ref provider.Ref) ([]byte, error) {
	key, err := c.key(ref.Key)
	if err != nil {
		return nil, err
	}
	s, err := c.read(ctx, key, ref.Version)
	if err != nil {
		return nil, err
	}
	if s.data == nil {
		return nil, fmt.Errorf("%s: %w", c, provider.NotFound(ref))
	}
	if ref.Property == "" {
		b, err := json.Marshal(s.data)
		if err != nil {
			return nil, fmt.Errorf("%s: key %q: cannot encode the secret: %w", c, ref.Key, err)
		}
		return b, nil
	}
	v, ok := property(s.data, ref.Property)
	if !ok {
		return nil, fmt.Errorf("%s: %w", c, provider.NotFound(ref))
	}
	b, err := encode(v)
	if err != nil {
		return nil, fmt.Errorf("%s: key %q property %q: cannot encode the value: %w", c, ref.Key, ref.Property, err)
	}
	return b, nil
}

// GetSecretMap returns every field of a secret.
func (c *Client) GetSecretMap(ctx context.Context, ref provider.Ref) (map[string][]byte, error) {
	key, err := c.key(ref.Key)
	if err != nil {
		return nil, err
	}
	s, err := c.read(ctx, key, ref.Version)
	if err != nil {
		return nil, err
	}
	data := s.data
	if data != nil && ref.Property != "" {
		v, ok := property(data, ref.Property)
		m, isMap := v.(map[string]any)
		if !ok || !isMap {
			return nil, fmt.Errorf("%s: %w", c, provider.NotFound(ref))
		}
		data = m
	}
	if data == nil {
		return nil, fmt.Errorf("%s: %w", c, provider.NotFound(ref))
	}
	out := make(map[string][]byte, len(data))
	for k, v := range data {
		b, err := encode(v)
		if err != nil {
			return nil, fmt.Errorf("%s: key %q property %q: cannot encode the value: %w", c, ref.Key, k, err)
		}
		out[k] = b
	}
	return out, nil
}

// GetAllSecrets lists the keys under find.Path (recursively), keeps those
// whose full key matches find.NameRegexp and, on KV v2, whose
// custom_metadata has every tag, and returns each secret as JSON.
func (c *Client) GetAllSecrets(ctx context.Context, find provider.Find) (map[string][]byte, error) {
	if len(find.Tags) > 0 && c.cfg.Version != KVv2 {
		return nil, fmt.Errorf("%s: find by tags needs KV v2 custom_metadata: %w", c, provider.ErrNotSupported)
	}
	var re *regexp.Regexp
	if find.NameRegexp != "" {
		var err error
		if re, err = regexp.Compile(find.NameRegexp); err != nil {
			return nil, fmt.Errorf("%s: invalid name regexp %q: %w", c, find.NameRegexp, err)
		}
	}
	keys, err := c.list(ctx, strings.Trim(find.Path, "/"))
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, k := range keys {
		if re != nil && !re.MatchString(k) {
			continue
		}
		s, err := c.read(ctx, k, "")
		if err != nil {
			return nil, err
		}
		if s.data == nil || !hasTags(s.custom, find.Tags) {
			continue
		}
		b, err := json.Marshal(s.data)
		if err != nil {
			return nil, fmt.Errorf("%s: key %q: cannot encode the secret: %w", c, k, err)
		}
		out[k] = b
	}
	return out, nil
}

func hasTags(custom map[string]any, tags map[string]string) bool {
	for k, v := range tags {
		if got, _ := custom[k].(string); got != v {
			return false
		}
	}
	return true
}

// list returns every key under dir, depth first, at most maxFindKeys.
func (c *Client) list(ctx context.Context, dir string) ([]string, error) {
	var out []string
	var walk func(dir string) error
	walk = func(dir string) error {
		p := c.mount + "/" + dir
		if c.cfg.Version == KVv2 {
			p = c.mount + "/metadata/" + dir
		}
		var names []string
		err := c.do(ctx, func() error {
			s, err := c.api.Logical().ListWithContext(ctx, p)
			if err != nil {
				if statusOf(err) == http.StatusNotFound {
					return nil
				}
				return fmt.Errorf("%s: cannot list %s: %w", c, p, describe(err))
			}
			if s == nil || s.Data == nil {
				return nil
			}
			ks, _ := s.Data["keys"].([]any)
			for _, k := range ks {
				if n, ok := k.(string); ok {
					names = append(names, n)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		sort.Strings(names)
		for _, n := range names {
			full := n
			if dir != "" {
				full = dir + "/" + n
			}
			if strings.HasSuffix(n, "/") {
				if err := walk(strings.TrimSuffix(full, "/")); err != nil {
					return err
				}
				continue
			}
			if len(out) >= maxFindKeys {
				return fmt.Errorf("%s: more than %d keys under %q; narrow the find's path", c, maxFindKeys, dir)
			}
			out = append(out, full)
		}
		return nil
	}
	return out, walk(dir)
}

// PushSecret writes value at ref without recording a writer.
func (c *Client) PushSecret(ctx context.Context, ref provider.PushRef, value []byte) error {
	return c.push(ctx, ref, value, "", true)
}

// PushSecretAs writes value at ref and records owner as its writer (KV v2
// custom_metadata "strata.dev/pushed-by[.PROPERTY]"). KV v1 keeps no
// metadata, so there an existing value is only overwritten with adopt.
func (c *Client) PushSecretAs(ctx context.Context, ref provider.PushRef, value []byte, owner string, adopt bool) error {
	if owner == "" {
		return fmt.Errorf("%s: key %q: empty owner", c, ref.Key)
	}
	return c.push(ctx, ref, value, owner, adopt)
}

func (c *Client) push(ctx context.Context, ref provider.PushRef, value []byte, owner string, adopt bool) error {
	key, err := c.key(ref.Key)
	if err != nil {
		return err
	}
	var whole map[string]any
	if ref.Property == "" {
		if err := json.Unmarshal(value, &whole); err != nil || whole == nil {
			return fmt.Errorf("%s: key %q: the value pushed as a whole secret is not a JSON object; set a property to write it as one field", c, ref.Key)
		}
	}
	cur, err := c.current(ctx, key)
	if err != nil {
		return err
	}
	if owner != "" {
		if err := c.checkOwner(ref, cur, owner, adopt); err != nil {
			return err
		}
	}
	next := map[string]any{}
	if ref.Property == "" {
		next = whole
	} else {
		for k, v := range cur.data {
			next[k] = v
		}
		next[ref.Property] = string(value)
	}
	recorded := owner == "" || c.cfg.Version == KVv1 || cur.custom[ownerKey(ref.Property)] == owner
	if cur.data != nil && recorded && sameData(cur.data, next) {
		return nil // nothing changed: no new version
	}
	if c.cfg.Version == KVv1 {
		return c.do(ctx, func() error {
			if _, err := c.api.Logical().WriteWithContext(ctx, c.dataPath(key), next); err != nil {
				return fmt.Errorf("%s: cannot write key %q: %w", c, key, describe(err))
			}
			return nil
		})
	}
	// Record the writer first, so a write that fails half way is still
	// ours on the next try; then write the data with check-and-set on the
	// version read, so a concurrent writer is not overwritten unseen.
	if owner != "" && cur.custom[ownerKey(ref.Property)] != owner {
		if err := c.setOwner(ctx, key, cur.exists, ownerKey(ref.Property), owner); err != nil {
			return err
		}
	}
	return c.do(ctx, func() error {
		body := map[string]any{"data": next, "options": map[string]any{"cas": cur.version}}
		if _, err := c.api.Logical().WriteWithContext(ctx, c.dataPath(key), body); err != nil {
			if statusOf(err) == http.StatusBadRequest && strings.Contains(err.Error(), "check-and-set") {
				return fmt.Errorf("%s: key %q changed while being written; will retry: %w", c, key, describe(err))
			}
			return fmt.Errorf("%s: cannot write key %q: %w", c, key, describe(err))
		}
		return nil
	})
}

func sameData(a, b map[string]any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// checkOwner refuses a push or delete of a value another writer owns.
func (c *Client) checkOwner(ref provider.PushRef, cur *secret, owner string, adopt bool) error {
	at := fmt.Sprintf("key %q", ref.Key)
	if ref.Property != "" {
		at = fmt.Sprintf("key %q property %q", ref.Key, ref.Property)
	}
	if c.cfg.Version == KVv2 {
		if rec, _ := cur.custom[ownerKey(ref.Property)].(string); rec != "" {
			if rec != owner {
				return fmt.Errorf("%s: %s is recorded as written by %s: %w", c, at, rec, provider.ErrNotOwner)
			}
			return nil
		}
		if ref.Property == "" {
			// A whole-secret write replaces every property: none may be
			// another writer's.
			for k, v := range cur.custom {
				if rec, _ := v.(string); strings.HasPrefix(k, ownerKeyPrefix+".") && rec != owner {
					return fmt.Errorf("%s: %s has property %q written by %s: %w", c, at, strings.TrimPrefix(k, ownerKeyPrefix+"."), rec, provider.ErrNotOwner)
				}
			}
		}
	}
	exists := cur.data != nil
	if exists && ref.Property != "" {
		_, exists = cur.data[ref.Property]
	}
	if exists && !adopt {
		return fmt.Errorf("%s: %s already exists and was not written by %s: %w", c, at, owner, provider.ErrNotOwner)
	}
	return nil
}

// setOwner records owner under custom_metadata key k.
func (c *Client) setOwner(ctx context.Context, key string, exists bool, k, owner string) error {
	p := c.mount + "/metadata/" + key
	return c.do(ctx, func() error {
		var err error
		if exists {
			_, err = c.api.Logical().JSONMergePatch(ctx, p, map[string]any{"custom_metadata": map[string]any{k: owner}})
		} else {
			_, err = c.api.Logical().WriteWithContext(ctx, p, map[string]any{"custom_metadata": map[string]any{k: owner}})
		}
		if err != nil {
			return fmt.Errorf("%s: cannot record the writer of key %q: %w", c, key, describe(err))
		}
		return nil
	})
}

// DeleteSecret removes ref without checking who wrote it.
func (c *Client) DeleteSecret(ctx context.Context, ref provider.PushRef) error {
	return c.del(ctx, ref, "", true)
}

// DeleteSecretAs removes ref only when owner wrote it.
func (c *Client) DeleteSecretAs(ctx context.Context, ref provider.PushRef, owner string, adopt bool) error {
	if owner == "" {
		return fmt.Errorf("%s: key %q: empty owner", c, ref.Key)
	}
	return c.del(ctx, ref, owner, adopt)
}

// del removes a property (rewriting the rest) or the whole secret. A secret
// left without properties is removed, on KV v2 with its metadata when no
// other writer is recorded on it.
func (c *Client) del(ctx context.Context, ref provider.PushRef, owner string, adopt bool) error {
	key, err := c.key(ref.Key)
	if err != nil {
		return err
	}
	cur, err := c.current(ctx, key)
	if err != nil {
		return err
	}
	if !cur.exists {
		return nil
	}
	if owner != "" {
		if err := c.checkOwner(ref, cur, owner, adopt); err != nil {
			return err
		}
	}
	next := map[string]any{}
	if ref.Property != "" {
		if _, ok := cur.data[ref.Property]; !ok && cur.custom[ownerKey(ref.Property)] == nil {
			return nil
		}
		for k, v := range cur.data {
			if k != ref.Property {
				next[k] = v
			}
		}
	}
	if c.cfg.Version == KVv1 {
		return c.do(ctx, func() error {
			var err error
			if len(next) == 0 {
				_, err = c.api.Logical().DeleteWithContext(ctx, c.dataPath(key))
			} else {
				_, err = c.api.Logical().WriteWithContext(ctx, c.dataPath(key), next)
			}
			if err != nil && statusOf(err) != http.StatusNotFound {
				return fmt.Errorf("%s: cannot delete key %q: %w", c, key, describe(err))
			}
			return nil
		})
	}
	others := false
	for k := range cur.custom {
		if k != ownerKey(ref.Property) && strings.HasPrefix(k, ownerKeyPrefix) {
			others = true
		}
	}
	meta := c.mount + "/metadata/" + key
	return c.do(ctx, func() error {
		var err error
		switch {
		case len(next) == 0 && !others:
			_, err = c.api.Logical().DeleteWithContext(ctx, meta)
		case len(next) == 0:
			_, err = c.api.Logical().DeleteWithContext(ctx, c.dataPath(key))
		default:
			_, err = c.api.Logical().WriteWithContext(ctx, c.dataPath(key), map[string]any{"data": next, "options": map[string]any{"cas": cur.version}})
		}
		if err != nil && statusOf(err) != http.StatusNotFound {
			return fmt.Errorf("%s: cannot delete key %q: %w", c, key, describe(err))
		}
		if len(next) == 0 && !others {
			return nil
		}
		if _, err := c.api.Logical().JSONMergePatch(ctx, meta, map[string]any{"custom_metadata": map[string]any{ownerKey(ref.Property): nil}}); err != nil && statusOf(err) != http.StatusNotFound {
			return fmt.Errorf("%s: cannot clear the writer of key %q: %w", c, key, describe(err))
		}
		return nil
	})
}

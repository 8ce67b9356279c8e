// Package discover has the names Vault uses from
// github.com/hashicorp/go-discover, with no provider: Addrs always fails, so
// a raft auto_join stanza names the missing provider in its error instead of
// joining anything. It must not grow providers; a test that needs auto-join
// needs the real library.
package discover

import (
	"fmt"
	"log"
	"sort"
	"strconv"
	"strings"
)

// Provider looks up the addresses of a cloud's nodes.
type Provider interface {
	Addrs(args map[string]string, l *log.Logger) ([]string, error)
	Help() string
}

// Providers is empty: this build knows no cloud.
var Providers = map[string]Provider{}

// Discover resolves auto-join configurations through its providers.
type Discover struct {
	Providers map[string]Provider
}

// Option configures a Discover.
type Option func(*Discover) error

// New returns a Discover configured by opts.
func New(opts ...Option) (*Discover, error) {
	d := &Discover{}
	for _, o := range opts {
		if err := o(d); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// WithProviders sets the providers a Discover knows.
func WithProviders(m map[string]Provider) Option {
	return func(d *Discover) error { d.Providers = m; return nil }
}

// Addrs refuses every configuration: this build of Vault has no auto-join.
func (d *Discover) Addrs(cfg string, l *log.Logger) ([]string, error) {
	args, err := Parse(cfg)
	if err != nil {
		return nil, fmt.Errorf("discover: %w", err)
	}
	return nil, fmt.Errorf("discover: provider %q is not built into this Vault (test/tools/vault/nodiscover)", args["provider"])
}

// Config is an auto-join configuration's key/value pairs.
type Config map[string]string

// Parse reads "key=value key=value ..." (values may be double-quoted Go
// strings).
func Parse(s string) (Config, error) {
	c := Config{}
	for rest := strings.TrimSpace(s); rest != ""; rest = strings.TrimSpace(rest) {
		k, v, ok := strings.Cut(rest, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \"") {
			return nil, fmt.Errorf("want key=value pairs, got %q", rest)
		}
		if strings.HasPrefix(v, `"`) {
			q, err := strconv.QuotedPrefix(v)
			if err != nil {
				return nil, fmt.Errorf("value of %s: %w", k, err)
			}
			c[k], _ = strconv.Unquote(q)
			rest = v[len(q):]
			continue
		}
		v, rest, _ = strings.Cut(v, " ")
		c[k] = v
	}
	return c, nil
}

// String writes c back in the form Parse reads, provider first, the other
// keys sorted.
func (c Config) String() string {
	keys := make([]string, 0, len(c))
	for k := range c {
		if k != "provider" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	keys = append([]string{"provider"}, keys...)
	var out []string
	for _, k := range keys {
		if v := c[k]; v != "" {
			if strings.ContainsAny(v, ` "\=`) {
				v = strconv.Quote(v)
			}
			out = append(out, k+"="+v)
		}
	}
	return strings.Join(out, " ")
}

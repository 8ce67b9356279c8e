package controller

import (
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"sort"

	"k8s.io/apimachinery/pkg/util/validation"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/secrets/template"
)

// errNotDecodable says a value is not in the encoding its decodingStrategy
// names; the message never holds the value.
var errNotDecodable = errors.New("value is not decodable")

// decode applies a decodingStrategy (ESO's semantics, except that Base64
// and Base64URL also accept values without padding).
func decode(strategy secretsv1.ExternalSecretDecodingStrategy, v []byte) ([]byte, error) {
	try := func(encs ...*base64.Encoding) ([]byte, error) {
		for _, e := range encs {
			if out, err := e.DecodeString(string(v)); err == nil {
				return out, nil
			}
		}
		return nil, errNotDecodable
	}
	switch strategy {
	case "", secretsv1.DecodingNone:
		return v, nil
	case secretsv1.DecodingBase64:
		return try(base64.StdEncoding, base64.RawStdEncoding)
	case secretsv1.DecodingBase64URL:
		return try(base64.URLEncoding, base64.RawURLEncoding)
	case secretsv1.DecodingAuto:
		if out, err := try(base64.StdEncoding, base64.URLEncoding); err == nil {
			return out, nil
		}
		return v, nil
	}
	return nil, fmt.Errorf("unknown decodingStrategy %q", strategy)
}

// decodeMap decodes every value of m, naming the key that fails.
func decodeMap(strategy secretsv1.ExternalSecretDecodingStrategy, m map[string][]byte) error {
	for _, k := range sortedKeys(m) {
		out, err := decode(strategy, m[k])
		if err != nil {
			return fmt.Errorf("the value of %q is not %s: %w", k, strategy, err)
		}
		m[k] = out
	}
	return nil
}

// rewriteKeys applies dataFrom rewrites, in order, to the keys of m.
func rewriteKeys(rewrites []secretsv1.ExternalSecretRewrite, m map[string][]byte) (map[string][]byte, error) {
	for i, rw := range rewrites {
		out := make(map[string][]byte, len(m))
		switch {
		case rw.Regexp != nil:
			re, err := regexp.Compile(rw.Regexp.Source)
			if err != nil {
				return nil, fmt.Errorf("rewrite[%d].regexp.source does not compile: %w", i, err)
			}
			for k, v := range m {
				out[re.ReplaceAllString(k, rw.Regexp.Target)] = v
			}
		case rw.Transform != nil:
			for _, k := range sortedKeys(m) {
				nk, err := template.Key(rw.Transform.Template, k)
				if err != nil {
					return nil, fmt.Errorf("rewrite[%d].%w", i, err)
				}
				out[nk] = m[k]
			}
		default:
			return nil, fmt.Errorf("rewrite[%d]: set regexp or transform", i)
		}
		m = out
	}
	return m, nil
}

// invalidKeys lists the keys that cannot be Secret keys, sorted.
func invalidKeys(m map[string][]byte) []string {
	var bad []string
	for k := range m {
		if len(validation.IsConfigMapKey(k)) > 0 {
			bad = append(bad, fmt.Sprintf("%q", k))
		}
	}
	sort.Strings(bad)
	return bad
}

package fake

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	secretsv1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	"github.com/strata-dev/strata/internal/secrets/provider"
)

func TestFake(t *testing.T) {
	spec := &secretsv1.SecretStoreSpec{Provider: secretsv1.SecretStoreProvider{Fake: &secretsv1.FakeProvider{Data: []secretsv1.FakeProviderData{
		{Key: "plain", Value: "v"},
		{Key: "json", Value: `{"user":"app","port":5432}`},
		{Key: "map", ValueMap: map[string]string{"a": "1"}},
		{Key: "versioned", Value: "old", Version: "1"},
		{Key: "versioned", Value: "new", Version: "2"},
	}}}}
	c, err := New(context.Background(), provider.Store{Kind: "SecretStore", Name: "f", Namespace: "n", Spec: spec}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		ref      provider.Ref
		want     string
		notFound bool
	}{
		"plain":                   {ref: provider.Ref{Key: "plain"}, want: "v"},
		"json property":           {ref: provider.Ref{Key: "json", Property: "user"}, want: "app"},
		"json number":             {ref: provider.Ref{Key: "json", Property: "port"}, want: "5432"},
		"valueMap property":       {ref: provider.Ref{Key: "map", Property: "a"}, want: "1"},
		"valueMap whole":          {ref: provider.Ref{Key: "map"}, want: `{"a":"1"}`},
		"version":                 {ref: provider.Ref{Key: "versioned", Version: "1"}, want: "old"},
		"latest":                  {ref: provider.Ref{Key: "versioned"}, want: "new"},
		"missing key":             {ref: provider.Ref{Key: "nope"}, notFound: true},
		"missing property":        {ref: provider.Ref{Key: "json", Property: "nope"}, notFound: true},
		"missing version":         {ref: provider.Ref{Key: "plain", Version: "9"}, notFound: true},
		"property of a plain one": {ref: provider.Ref{Key: "plain", Property: "x"}, notFound: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := c.GetSecret(context.Background(), tc.ref)
			if tc.notFound {
				if !errors.Is(err, provider.ErrNotFound) {
					t.Fatalf("err = %v, want ErrNotFound", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	m, err := c.GetSecretMap(context.Background(), provider.Ref{Key: "json"})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]string{"user": "app", "port": "5432"}, strs(m)); d != "" {
		t.Errorf("extract (-want +got):\n%s", d)
	}
	all, err := c.GetAllSecrets(context.Background(), provider.Find{NameRegexp: "^(plain|map)$"})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]string{"plain": "v", "map": `{"a":"1"}`}, strs(all)); d != "" {
		t.Errorf("find (-want +got):\n%s", d)
	}
	if _, err := c.GetAllSecrets(context.Background(), provider.Find{Tags: map[string]string{"a": "b"}}); !errors.Is(err, provider.ErrNotSupported) {
		t.Errorf("find by tags: %v, want ErrNotSupported", err)
	}
}

func strs(m map[string][]byte) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

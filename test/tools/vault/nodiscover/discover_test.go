package discover

import (
	"strings"
	"testing"
)

func TestParseString(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: `provider=aws tag_key=role tag_value="raft node"`, want: `provider=aws tag_key=role tag_value="raft node"`},
		{in: ` addr=10.0.0.1  provider=k8s `, want: `provider=k8s addr=10.0.0.1`},
		{in: `provider`, err: "want key=value"},
		{in: `provider="aws`, err: "value of provider"},
	} {
		c, err := Parse(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) = %v, want error %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || c.String() != tc.want {
			t.Errorf("Parse(%q).String() = %q, %v; want %q", tc.in, c.String(), err, tc.want)
		}
	}
	d, _ := New(WithProviders(Providers))
	if _, err := d.Addrs("provider=aws", nil); err == nil || !strings.Contains(err.Error(), `"aws" is not built`) {
		t.Errorf("Addrs = %v, want the provider named as missing", err)
	}
}

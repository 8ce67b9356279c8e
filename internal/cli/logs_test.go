package cli

import "testing"

func TestLogMentions(t *testing.T) {
	cases := map[string]struct {
		line, ns, name string
		want           bool
	}{
		"klog object":              {`INFO applied {"sync": "team/app", "revision": "main@sha1:1"}`, "team", "app", true},
		"other namespace":          {`INFO applied {"sync": "other/app"}`, "team", "app", false},
		"controller-runtime json":  {`{"msg":"Reconciler error","Sync":{"name":"app","namespace":"team"}}`, "team", "app", true},
		"json other namespace":     {`{"Sync":{"name":"app","namespace":"other"}}`, "team", "app", false},
		"prefix of another name":   {`INFO applied {"sync": "team/app2"}`, "team", "app", false},
		"cluster-scoped quoted":    {`INFO composed {"xr": "db-x1"}`, "", "db-x1", true},
		"cluster-scoped substring": {`INFO composed {"xr": "db-x12"}`, "", "db-x1", false},
		"unrelated":                {`INFO starting manager`, "team", "app", false},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got := logMentions(c.line, c.ns, c.name); got != c.want {
				t.Errorf("logMentions(%q, %q, %q) = %v, want %v", c.line, c.ns, c.name, got, c.want)
			}
		})
	}
}

package managed

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	managedv1 "github.com/strata-dev/strata/internal/managed/apis/v1alpha1"
	nopv1 "github.com/strata-dev/strata/providers/nop/apis/nop/v1alpha1"
)

func TestManagementPoliciesAllows(t *testing.T) {
	cases := map[string]struct {
		p    managedv1.ManagementPolicies
		want map[managedv1.ManagementAction]bool
	}{
		"empty means all": {nil, map[managedv1.ManagementAction]bool{"Create": true, "Delete": true, "Observe": true}},
		"star":            {managedv1.ManagementPolicies{"*"}, map[managedv1.ManagementAction]bool{"Update": true, "LateInitialize": true}},
		"observe only":    {managedv1.ManagementPolicies{"Observe"}, map[managedv1.ManagementAction]bool{"Observe": true, "Create": false, "Update": false, "Delete": false}},
		"no delete": {managedv1.ManagementPolicies{"Observe", "Create", "Update", "LateInitialize"},
			map[managedv1.ManagementAction]bool{"Create": true, "Delete": false}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := map[managedv1.ManagementAction]bool{}
			for a := range tc.want {
				got[a] = tc.p.Allows(a)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("-want +got:\n%s", d)
			}
		})
	}
}

func TestPollIntervalAndJitter(t *testing.T) {
	cases := map[string]struct {
		annotation string
		want       time.Duration
	}{
		"default":     {"", time.Minute},
		"annotation":  {"30s", 30 * time.Second},
		"invalid":     {"soon", time.Minute},
		"not postive": {"-1s", time.Minute},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := &nopv1.NopResource{}
			if tc.annotation != "" {
				r.Annotations = map[string]string{AnnotationPollInterval: tc.annotation}
			}
			if got := pollInterval(r, time.Minute); got != tc.want {
				t.Errorf("pollInterval = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestExternalName(t *testing.T) {
	r := &nopv1.NopResource{ObjectMeta: metav1.ObjectMeta{Name: "obj"}}
	if got := ExternalName(r); got != "obj" {
		t.Errorf("default external name = %q", got)
	}
	r.Annotations = map[string]string{AnnotationExternalName: `a"; DROP TABLE x; --`}
	if got := ExternalName(r); got != `a"; DROP TABLE x; --` {
		t.Errorf("annotated external name = %q", got)
	}
}

func TestUserAnnotationChanged(t *testing.T) {
	obj := func(a map[string]string) *nopv1.NopResource {
		return &nopv1.NopResource{ObjectMeta: metav1.ObjectMeta{Annotations: a}}
	}
	cases := map[string]struct {
		old, new map[string]string
		want     bool
	}{
		"nothing":                  {nil, nil, false},
		"create intent":            {nil, map[string]string{AnnotationCreatePending: "t", AnnotationExternalName: "x"}, false},
		"create success":           {map[string]string{AnnotationCreatePending: "t"}, map[string]string{AnnotationCreatePending: "t", AnnotationCreateSucceeded: "t"}, false},
		"user changes poll":        {nil, map[string]string{AnnotationPollInterval: "1s"}, true},
		"user renames external":    {map[string]string{AnnotationExternalName: "a"}, map[string]string{AnnotationExternalName: "b"}, true},
		"user adds own annotation": {nil, map[string]string{"team": "x"}, true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := userAnnotationChanged{}.Update(event.UpdateEvent{ObjectOld: obj(tc.old), ObjectNew: obj(tc.new)})
			if got != tc.want {
				t.Errorf("Update = %t, want %t", got, tc.want)
			}
		})
	}
}

func TestGeneratePassword(t *testing.T) {
	a, err := GeneratePassword()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GeneratePassword()
	if len(a) != 32 || a == b {
		t.Errorf("passwords %q and %q: want 32 random characters", a, b)
	}
}

func TestGlobalLimiter(t *testing.T) {
	if globalLimiter(0) != nil {
		t.Error("rate 0 must mean no limit")
	}
	a, b := globalLimiter(7), globalLimiter(7)
	if a == nil || a != b {
		t.Error("kinds with the same rate must share one process-wide limiter")
	}
	if a.Burst() != 7 || float64(a.Limit()) != 7 {
		t.Errorf("limiter = %v/s burst %d, want 7/s burst 7", a.Limit(), a.Burst())
	}
}

func TestMayManage(t *testing.T) {
	now := metav1.Now()
	cases := map[string]struct {
		annotations map[string]string
		createdAt   *metav1.Time
		policies    managedv1.ManagementPolicies
		want        bool
	}{
		"found, never created here":                    {want: false},
		"found, external name chosen by a user":        {annotations: map[string]string{AnnotationExternalName: "victim"}, want: false},
		"create intent recorded":                       {annotations: map[string]string{AnnotationCreatePending: "2026-12-01T00:00:00Z"}, want: true},
		"create succeeded (name chosen by the system)": {annotations: map[string]string{AnnotationCreateSucceeded: "2026-12-01T00:00:00Z"}, want: true},
		"create recorded in status":                    {createdAt: &now, want: true},
		"handed over":                                  {annotations: map[string]string{AnnotationAdoptExternal: "true"}, want: true},
		"hand-over annotation not true":                {annotations: map[string]string{AnnotationAdoptExternal: "yes"}, want: false},
		"import: Observe only":                         {policies: managedv1.ManagementPolicies{"Observe"}, want: true},
		"import: may update and delete but not create": {policies: managedv1.ManagementPolicies{"Observe", "Update", "Delete"}, want: true},
		"all policies spelled out":                     {policies: managedv1.ManagementPolicies{"Observe", "Create", "Update", "Delete"}, want: false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := &nopv1.NopResource{}
			r.Annotations = tc.annotations
			r.Status.CreatedAt = tc.createdAt
			r.Spec.ManagementPolicies = tc.policies
			if got := mayManage(r); got != tc.want {
				t.Errorf("mayManage = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestClaimNamespaceAllowed(t *testing.T) {
	cases := map[string]struct {
		allowed []string
		ns      string
		want    bool
	}{
		"unset allows every namespace": {nil, "team-a", true},
		"listed":                       {[]string{"team-a", "team-b"}, "team-b", true},
		"not listed":                   {[]string{"team-a"}, "team-b", false},
		"a prefix is not a match":      {[]string{"team"}, "team-b", false},
		"star":                         {[]string{"*"}, "anything", true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := claimNamespaceAllowed(tc.allowed, tc.ns); got != tc.want {
				t.Errorf("claimNamespaceAllowed(%v, %q) = %v, want %v", tc.allowed, tc.ns, got, tc.want)
			}
		})
	}
}

package promotion

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
)

func TestBlocked(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	w := func(kind, sched string, d time.Duration, tz string) deliveryv1.PromotionWindow {
		return deliveryv1.PromotionWindow{Kind: kind, Schedule: sched, Duration: metav1.Duration{Duration: d}, TimeZone: tz}
	}
	cases := map[string]struct {
		windows []deliveryv1.PromotionWindow
		now     string
		blocked bool
		until   string
	}{
		"no windows": {now: "2026-11-27T10:00:00Z"},
		"deny open": {
			windows: []deliveryv1.PromotionWindow{w("deny", "0 17 * * 5", 63*time.Hour, "")},
			now:     "2026-11-28T10:00:00Z", blocked: true, until: "2026-11-30T08:00:00Z",
		},
		"deny closed": {
			windows: []deliveryv1.PromotionWindow{w("deny", "0 17 * * 5", 63*time.Hour, "")},
			now:     "2026-11-30T09:00:00Z",
		},
		"deny in a time zone": {
			windows: []deliveryv1.PromotionWindow{w("deny", "0 17 * * *", time.Hour, "Europe/Paris")},
			now:     "2026-11-27T16:30:00Z", blocked: true, until: "2026-11-27T17:00:00Z",
		},
		"outside every allow window": {
			windows: []deliveryv1.PromotionWindow{w("allow", "0 9 * * 1-5", 8*time.Hour, "")},
			now:     "2026-11-27T18:00:00Z", blocked: true, until: "2026-11-30T09:00:00Z",
		},
		"inside an allow window": {
			windows: []deliveryv1.PromotionWindow{w("allow", "0 9 * * 1-5", 8*time.Hour, "")},
			now:     "2026-11-27T10:00:00Z",
		},
		"deny inside allow pushes to the next allow": {
			windows: []deliveryv1.PromotionWindow{w("allow", "0 9 * * *", 8*time.Hour, ""), w("deny", "0 12 * * *", 6*time.Hour, "")},
			now:     "2026-11-27T13:00:00Z", blocked: true, until: "2026-11-28T09:00:00Z",
		},
		"overlapping deny activations": {
			windows: []deliveryv1.PromotionWindow{w("deny", "0 * * * *", 90*time.Minute, "")},
			now:     "2026-11-27T10:10:00Z", blocked: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ws, err := parseWindows(tc.windows)
			if err != nil {
				t.Fatal(err)
			}
			b, why, until := blocked(ws, at(tc.now))
			if b != tc.blocked {
				t.Fatalf("blocked = %t (%s), want %t", b, why, tc.blocked)
			}
			if tc.until != "" && !until.Equal(at(tc.until)) {
				t.Errorf("until = %s, want %s", until.UTC().Format(time.RFC3339), tc.until)
			}
		})
	}
}

func TestParseWindowsErrors(t *testing.T) {
	cases := map[string]deliveryv1.PromotionWindow{
		"bad cron":      {Kind: "deny", Schedule: "every friday", Duration: metav1.Duration{Duration: time.Hour}},
		"every":         {Kind: "deny", Schedule: "@every 1h", Duration: metav1.Duration{Duration: time.Hour}},
		"bad time zone": {Kind: "deny", Schedule: "0 17 * * 5", Duration: metav1.Duration{Duration: time.Hour}, TimeZone: "Mars/Olympus"},
		"zero duration": {Kind: "deny", Schedule: "0 17 * * 5"},
	}
	for name, w := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := parseWindows([]deliveryv1.PromotionWindow{w}); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

package promotion

import (
	"fmt"
	"time"
	_ "time/tzdata" // windows name IANA time zones; the image has no zoneinfo

	"github.com/robfig/cron/v3"

	deliveryv1 "github.com/strata-dev/strata/apis/delivery/v1alpha1"
)

// window is a parsed promotion window.
type window struct {
	kind     string
	schedule *cron.SpecSchedule
	duration time.Duration
	text     string
}

// parseWindows parses the windows of a stage; the error names the window
// (by index) and its fault.
func parseWindows(ws []deliveryv1.PromotionWindow) ([]window, error) {
	out := make([]window, 0, len(ws))
	for i, w := range ws {
		loc := time.UTC
		if w.TimeZone != "" {
			l, err := time.LoadLocation(w.TimeZone)
			if err != nil {
				return nil, fmt.Errorf("spec.promotion.windows[%d].timeZone %q is not a time zone: %w", i, w.TimeZone, err)
			}
			loc = l
		}
		s, err := cron.ParseStandard(w.Schedule)
		if err != nil {
			return nil, fmt.Errorf("spec.promotion.windows[%d].schedule %q: %w", i, w.Schedule, err)
		}
		spec, ok := s.(*cron.SpecSchedule)
		if !ok {
			return nil, fmt.Errorf("spec.promotion.windows[%d].schedule %q: use a five-field cron expression, not @every", i, w.Schedule)
		}
		if w.Duration.Duration <= 0 {
			return nil, fmt.Errorf("spec.promotion.windows[%d].duration must be positive", i)
		}
		spec.Location = loc
		out = append(out, window{kind: w.Kind, schedule: spec, duration: w.Duration.Duration,
			text: fmt.Sprintf("%s window %q (%s)", w.Kind, w.Schedule, w.Duration.Duration)})
	}
	return out, nil
}

// openUntil says whether w is open at t and, if so, when it closes
// (activations that overlap extend it).
func (w window) openUntil(t time.Time) (bool, time.Time) {
	// The first activation after t-duration is the only one that can cover t.
	a := w.schedule.Next(t.Add(-w.duration).Add(-time.Second))
	for !a.IsZero() && !a.After(t) && !a.Add(w.duration).After(t) {
		a = w.schedule.Next(a)
	}
	if a.IsZero() || a.After(t) {
		return false, time.Time{}
	}
	end := a.Add(w.duration)
	for i := 0; i < 1000; i++ {
		n := w.schedule.Next(a)
		if n.IsZero() || n.After(end) {
			break
		}
		a = n
		end = n.Add(w.duration)
	}
	return true, end
}

// blocked says whether promotions are blocked at now: a deny window is open,
// or allow windows exist and none is open. It returns the window that
// blocks and the moment promotions are next allowed (zero when unknown).
func blocked(ws []window, now time.Time) (bool, string, time.Time) {
	var allows []window
	for _, w := range ws {
		if w.kind == deliveryv1.WindowAllow {
			allows = append(allows, w)
		}
	}
	t := now
	why := ""
	for i := 0; i < 100; i++ {
		moved := false
		for _, w := range ws {
			if w.kind != deliveryv1.WindowDeny {
				continue
			}
			if open, end := w.openUntil(t); open {
				if why == "" {
					why = w.text + " is open"
				}
				t, moved = end, true
			}
		}
		if len(allows) > 0 {
			inAllow := false
			var next time.Time
			for _, w := range allows {
				if open, _ := w.openUntil(t); open {
					inAllow = true
					break
				}
				if n := w.schedule.Next(t); !n.IsZero() && (next.IsZero() || n.Before(next)) {
					next = n
				}
			}
			if !inAllow {
				if why == "" {
					why = "no allow window is open"
				}
				if next.IsZero() {
					return true, why, time.Time{}
				}
				t, moved = next, true
			}
		}
		if !moved {
			break
		}
	}
	if why == "" {
		return false, "", time.Time{}
	}
	return true, why, t
}

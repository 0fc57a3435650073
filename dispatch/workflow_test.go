package dispatch

import (
	"maps"
	"slices"
	"testing"

	"github.com/gridmap/gridmap"
)

// TestClosedIsFinal: no action, with or without a status to resume to,
// moves a report out of closed.
func TestClosedIsFinal(t *testing.T) {
	actions := []string{ActionReport, ActionRegister, ActionDispatch, ActionStart, ActionResolve, ActionVerify, ActionClose,
		ActionReject, ActionEscalate, ActionExtend, ActionSuspend, ActionResume, ActionReroute, ActionReportIn}
	for _, a := range actions {
		for _, resumeTo := range []string{"", gridmap.StatusDispatched} {
			if to, err := Next(gridmap.StatusClosed, a, resumeTo); err == nil {
				t.Errorf("%s (resume to %q) moves a closed report to %s", a, resumeTo, to)
			}
		}
	}
	// Every action the workflow knows is among those tried.
	for from, moves := range transitions {
		for a := range moves {
			if !slices.Contains(actions, a) {
				t.Errorf("action %s (from %s) is not tried on a closed report", a, from)
			}
		}
	}
}

// TestCount: every report counts in the total; closed and rejected ones
// are not open; only those whose clock runs count as overdue.
func TestCount(t *testing.T) {
	c := &gridmap.ReportCounts{Counts: map[string]int64{}}
	Count(c, gridmap.StatusDispatched, 5, 2)
	Count(c, gridmap.StatusSuspended, 3, 3)
	Count(c, gridmap.StatusClosed, 7, 7)
	Count(c, gridmap.StatusDispatched, 1, 1)
	want := gridmap.ReportCounts{Counts: map[string]int64{gridmap.StatusDispatched: 6, gridmap.StatusSuspended: 3, gridmap.StatusClosed: 7},
		Total: 16, Open: 9, Overdue: 3}
	if !maps.Equal(c.Counts, want.Counts) || c.Total != want.Total || c.Open != want.Open || c.Overdue != want.Overdue {
		t.Errorf("counts %+v, want %+v", c, want)
	}
}

package dispatch

import (
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

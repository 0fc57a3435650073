package dispatch

import (
	"slices"

	"github.com/gridmap/gridmap"
)

// ActionConsult records that a street's joint meeting (党建联席会议)
// consulted on a report (会商研判). It changes nothing of the report's
// state: the meeting's decision is in the event's note and data, and a
// meeting that hands the report up a tier (提级办理) follows it with an
// ordinary escalation.
const ActionConsult = "consult"

// ConsultTier is the weakest tier a joint meeting takes up: reports the
// street could not settle alone.
const ConsultTier = gridmap.TierDistrict

// CheckConsult returns EUNPROCESSABLE, naming report id, when a joint
// meeting of street in layer may not take up the report in state s: it
// must be open, owned in that street (a grid of its owners' chains is the
// street), at ConsultTier or above (by its owners or by escalation), and
// able to escalate when escalate is asked.
func CheckConsult(id int64, s State, layer, street string, escalate bool) error {
	a := &s.Assignment
	switch {
	case !Open(s.Status):
		return gridmap.Errorf(gridmap.EUNPROCESSABLE, "report %d is %s: a joint meeting takes up open reports only", id, s.Status)
	case a.Layer != layer || !slices.Contains(gridmap.ReportScopeCodes(a), street):
		return gridmap.Errorf(gridmap.EUNPROCESSABLE, "report %d is not in street %s of layer %s: none of its grids lies there", id, street, layer)
	case !TierAtLeast(a.Tier, ConsultTier):
		return gridmap.Errorf(gridmap.EUNPROCESSABLE, "report %d is at the %s tier; a joint meeting takes up reports of the %s tier or above (escalate it first)",
			id, a.Tier, ConsultTier)
	}
	if escalate {
		if _, err := Next(s.Status, ActionEscalate, s.ResumeTo); err != nil {
			return gridmap.Errorf(gridmap.EUNPROCESSABLE, "report %d cannot be handed up a tier: %s", id, gridmap.ErrorMessage(err))
		}
	}
	return nil
}

// Consult is the outcome of a consult event: the state unchanged.
func Consult(s State) Outcome {
	out := Outcome{State: s}
	out.DeadlineAt = NextDeadline(s)
	return out
}

// OnSiteActions are the report actions that count as a leader's on-site
// work during a visit: filing the report, resolving it, closing it.
var OnSiteActions = []string{ActionReport, ActionResolve, ActionClose}

package dispatch

import (
	"slices"
	"time"

	"github.com/gridmap/gridmap"
)

// Workflow actions, as POST /v1/reports/{id}/events names them.
const (
	ActionReport   = "report" // the first event, written at intake
	ActionRegister = "register"
	ActionDispatch = "dispatch"
	ActionStart    = "start"
	ActionResolve  = "resolve"
	ActionVerify   = "verify"
	ActionClose    = "close"
	ActionReject   = "reject"
	ActionEscalate = "escalate"
	ActionExtend   = "extend"
	ActionSuspend  = "suspend"
	ActionResume   = "resume"
	ActionReroute  = "reroute"   // a boundary change moved the report to another owner
	ActionReportIn = "report_in" // a department called in by escalation reports in (报到)
)

// ReportInLimit is how long a department called in by escalation has to
// report in.
var ReportInLimit = gridmap.Limit{Value: 2, Clock: gridmap.ClockWorkingHours}

// transitions: from status, action -> to status. Actions that keep the
// status (escalate, extend) are listed with the same status on both sides.
// Closed is final: no action leads out of it. The indicators' daily sums
// keep a closed report's cells without a status, and the report counts
// summed from them (postgres/report_counts.go) count those as closed.
var transitions = map[string]map[string]string{
	gridmap.StatusReported: {
		ActionRegister: gridmap.StatusRegistered,
		ActionReject:   gridmap.StatusRejected,
	},
	gridmap.StatusRegistered: {
		ActionReportIn: gridmap.StatusRegistered,
		ActionDispatch: gridmap.StatusDispatched,
		ActionReject:   gridmap.StatusRejected,
		ActionEscalate: gridmap.StatusRegistered,
		ActionSuspend:  gridmap.StatusSuspended,
	},
	gridmap.StatusDispatched: {
		ActionReportIn: gridmap.StatusDispatched,
		ActionStart:    gridmap.StatusInProgress,
		ActionEscalate: gridmap.StatusDispatched,
		ActionExtend:   gridmap.StatusDispatched,
		ActionSuspend:  gridmap.StatusSuspended,
	},
	gridmap.StatusInProgress: {
		ActionReportIn: gridmap.StatusInProgress,
		ActionResolve:  gridmap.StatusResolved,
		ActionEscalate: gridmap.StatusInProgress,
		ActionExtend:   gridmap.StatusInProgress,
		ActionSuspend:  gridmap.StatusSuspended,
	},
	gridmap.StatusResolved: {
		ActionVerify: gridmap.StatusVerified,
		// Verification failed: back to the handlers (rework, 返工).
		ActionReject: gridmap.StatusInProgress,
	},
	gridmap.StatusVerified: {
		ActionClose: gridmap.StatusClosed,
	},
}

// Next returns the status a report in status from reaches by action.
// resumeTo is the status a suspended report returns to. Returns ECONFLICT
// naming the moves allowed from status.
func Next(from, action, resumeTo string) (string, error) {
	if from == gridmap.StatusSuspended {
		if action == ActionResume && resumeTo != "" {
			return resumeTo, nil
		}
		return "", gridmap.Errorf(gridmap.ECONFLICT, "a suspended report can only be resumed, not %q", action)
	}
	if to, ok := transitions[from][action]; ok {
		return to, nil
	}
	var allowed []string
	for a := range transitions[from] {
		allowed = append(allowed, a)
	}
	if len(allowed) == 0 {
		return "", gridmap.Errorf(gridmap.ECONFLICT, "a %s report takes no further action (%q refused)", from, action)
	}
	slices.Sort(allowed)
	return "", gridmap.Errorf(gridmap.ECONFLICT, "%q is not allowed for a %s report; allowed: %v", action, from, allowed)
}

// DoneStatuses are the statuses that need no further work; every other
// status is open. SQL receives this list as a parameter instead of
// spelling it.
var DoneStatuses = []string{gridmap.StatusClosed, gridmap.StatusRejected}

// Open reports whether a report in status still needs work.
func Open(status string) bool { return !slices.Contains(DoneStatuses, status) }

// ClockStopped are the statuses in which a report's deadlines do not run:
// done, and suspended (挂账) while it waits on something outside the
// workflow. SQL receives this list as a parameter.
var ClockStopped = []string{gridmap.StatusClosed, gridmap.StatusRejected, gridmap.StatusSuspended}

// ClockRuns reports whether the deadlines of a report in status run.
func ClockRuns(status string) bool { return !slices.Contains(ClockStopped, status) }

// Count adds to c (its Counts made) n reports of status, late of them past
// their due time: each counts in the total, open ones in Open, and those
// past due in Overdue while their clock runs.
func Count(c *gridmap.ReportCounts, status string, n, late int64) {
	c.Counts[status] += n
	c.Total += n
	if Open(status) {
		c.Open += n
	}
	if ClockRuns(status) {
		c.Overdue += late
	}
}

// Overdue reports whether a report in status, due at due, is past its
// deadline at now: its clock runs and due has passed.
func Overdue(status string, due, now time.Time) bool { return ClockRuns(status) && due.Before(now) }

// StatusFilter turns a status filter as clients send it ("" for any, a
// status, "open" or "done") into the statuses it selects and whether
// they are negated (nil statuses: no filter). SQL applies it as
// (status = ANY($list)) <> $negate.
func StatusFilter(f string) (statuses []string, negate bool) {
	switch f {
	case "":
		return nil, false
	case "open":
		return DoneStatuses, true
	case "done":
		return DoneStatuses, false
	}
	return []string{f}, false
}

// nextStep is the action each status waits for.
var nextStep = map[string]string{
	gridmap.StatusReported:   ActionRegister,
	gridmap.StatusRegistered: ActionDispatch,
	gridmap.StatusDispatched: ActionStart,
	gridmap.StatusInProgress: ActionResolve,
	gridmap.StatusResolved:   ActionVerify,
	gridmap.StatusVerified:   ActionClose,
}

// StepActions are the actions a category may limit with step_limits.
var StepActions = []string{ActionRegister, ActionDispatch, ActionStart, ActionResolve, ActionVerify, ActionClose}

// SetStep records in a the step a report in status waits for and, when the
// category limits it, when it is due counting from since.
func SetStep(a *gridmap.Assignment, status string, cat *gridmap.Category, since time.Time, cal *Calendar) error {
	a.NextStep, a.StepDueAt = nextStep[status], nil
	if cat == nil || a.NextStep == "" {
		return nil
	}
	l, ok := cat.StepLimits[a.NextStep]
	if !ok {
		return nil
	}
	due, err := Due(since, l, cal)
	if err != nil {
		return err
	}
	a.StepDueAt = &due
	return nil
}

// Moves are the actions a report in status can take next, the step it
// waits for first. A suspended report can only be resumed; report_in is
// offered only while departments called in have not reported in.
func Moves(status string, openTasks bool) []string {
	if status == gridmap.StatusSuspended {
		return []string{ActionResume}
	}
	var out []string
	for a := range transitions[status] {
		if a != nextStep[status] && (a != ActionReportIn || openTasks) {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	if step, ok := transitions[status][nextStep[status]]; ok && step != "" {
		out = slices.Insert(out, 0, nextStep[status])
	}
	return out
}

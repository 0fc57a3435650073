package dispatch

import (
	"fmt"
	"slices"
	"time"

	"github.com/gridmap/gridmap"
)

// State is what the workflow knows of a report between events.
type State struct {
	Status string
	// ResumeTo is the status a suspended report returns to.
	ResumeTo   string
	Assignment gridmap.Assignment
	// EscalatedFor is the latest deadline the report was escalated for
	// (nil when none): deadlines up to it have fired.
	EscalatedFor *time.Time
	// OpenTasks are the departments called in that have not reported in.
	OpenTasks []string
}

// Move is one event in a report's workflow.
type Move struct {
	Action string
	// Departments are those named by the caller: called in by escalate,
	// reporting in with report_in.
	Departments []string
	At          time.Time
	// Category is the report's line of the responsibility list, for the
	// limits of extend and of each step.
	Category *gridmap.Category
	Urgent   bool
	Calendar *Calendar
	// Deadline is set when the move is an overdue escalation: the deadline
	// that passed.
	Deadline *time.Time
}

// Outcome is what a move does to a report.
type Outcome struct {
	State State
	// DeadlineAt is when the report next escalates if nothing happens (nil:
	// it waits for nothing, being done or suspended).
	DeadlineAt *time.Time
	// Departments are those the event names: called in, or reporting in.
	Departments []string
	// Tasks are departments to call in, each to report in by TaskDue.
	Tasks   []string
	TaskDue time.Time
	// ReportedIn are the called-in departments whose tasks the move closes.
	ReportedIn []string
	// Note explains an automatic move.
	Note string
}

// Apply computes a move: the status it leads to, the tier, deadlines and
// step it leaves, and the department tasks it opens. Returns ECONFLICT for
// a move the workflow does not allow, EINVALID for a move missing what it
// needs.
func Apply(s State, m Move) (Outcome, error) {
	to := s.Status
	if m.Deadline == nil {
		// An overdue escalation raises the tier whatever the step; every
		// other move follows the workflow.
		var err error
		if to, err = Next(s.Status, m.Action, s.ResumeTo); err != nil {
			return Outcome{}, err
		}
	} else if m.Action != ActionEscalate {
		return Outcome{}, gridmap.Errorf(gridmap.EINVALID, "a passed deadline escalates; %q is not an escalation", m.Action)
	}
	out := Outcome{State: s, Departments: dedupe(m.Departments)}
	out.State.Status = to
	a := &out.State.Assignment
	switch m.Action {
	case ActionSuspend:
		out.State.ResumeTo = s.Status
	case ActionResume:
		out.State.ResumeTo = ""
	case ActionEscalate:
		a.Tier = TierAbove(a.Tier)
		// Whistle (吹哨): each department called in (those named, else the
		// report's) gets a task with a report-in deadline.
		if len(out.Departments) == 0 {
			out.Departments = DepartmentCodes(a)
		}
		due, err := Due(m.At, ReportInLimit, m.Calendar)
		if err != nil {
			return Outcome{}, err
		}
		out.Tasks, out.TaskDue = out.Departments, due
		if m.Deadline != nil {
			d := *m.Deadline
			out.State.EscalatedFor = &d
			step := ""
			if a.StepDueAt != nil && a.StepDueAt.Truncate(time.Microsecond).Equal(d) && !a.DueAt.Truncate(time.Microsecond).Equal(d) {
				step = a.NextStep + " step "
			}
			out.Note = fmt.Sprintf("past its %sdeadline of %s UTC: escalated to the %s tier",
				step, d.UTC().Format("2006-01-02 15:04"), a.Tier)
		}
	case ActionReportIn:
		if len(out.Departments) == 0 {
			return Outcome{}, gridmap.Errorf(gridmap.EINVALID, "report_in needs departments: the ones reporting in")
		}
		for _, d := range out.Departments {
			if !slices.Contains(s.OpenTasks, d) {
				return Outcome{}, gridmap.Errorf(gridmap.ECONFLICT,
					"only departments called in by an escalation, and not yet reported in, can report in: %s is not (open: %v)", d, s.OpenTasks)
			}
		}
		out.ReportedIn = out.Departments
	case ActionExtend:
		if m.Category == nil {
			return Outcome{}, gridmap.Errorf(gridmap.EUNPROCESSABLE, "the report's category no longer exists: nothing to extend by")
		}
		limit := m.Category.Limit
		if m.Urgent && m.Category.UrgentLimit != nil {
			limit = *m.Category.UrgentLimit
		}
		due, err := Due(m.At, limit, m.Calendar)
		if err != nil {
			return Outcome{}, err
		}
		a.DueAt = due
	}
	if to != s.Status {
		if err := SetStep(a, to, m.Category, m.At, m.Calendar); err != nil {
			return Outcome{}, err
		}
	}
	out.DeadlineAt = NextDeadline(out.State)
	return out, nil
}

// NextDeadline is when a report in state s next escalates if nothing
// happens: the earliest of its overall deadline and its step's deadline
// that it was not yet escalated for. Suspended and done reports wait for
// nothing (nil).
func NextDeadline(s State) *time.Time {
	if !ClockRuns(s.Status) {
		return nil
	}
	var next *time.Time
	consider := func(t time.Time) {
		t = t.Truncate(time.Microsecond) // as stored
		if t.IsZero() || (s.EscalatedFor != nil && !t.After(*s.EscalatedFor)) {
			return
		}
		if next == nil || t.Before(*next) {
			next = &t
		}
	}
	consider(s.Assignment.DueAt)
	if s.Assignment.StepDueAt != nil {
		consider(*s.Assignment.StepDueAt)
	}
	return next
}

// TierAbove is the tier an escalation (吹哨) hands a report to: the next one
// up, the city staying the city.
func TierAbove(t string) string {
	i := slices.Index(Tiers, t)
	if i < 0 {
		return gridmap.TierStreet
	}
	return Tiers[min(i+1, len(Tiers)-1)]
}

// DepartmentCodes lists the codes of an assignment's departments.
func DepartmentCodes(a *gridmap.Assignment) []string {
	codes := make([]string, 0, len(a.Departments))
	for _, d := range a.Departments {
		codes = append(codes, d.Code)
	}
	return codes
}

// dedupe returns codes without repeats, in their first order.
func dedupe(codes []string) []string {
	out := make([]string, 0, len(codes))
	for _, c := range codes {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// Reroute gives assignment a the owners a boundary change left its report
// with: primary, the chain of the grid now covering its point, and
// coOwners. The outside-coverage flags go, since a grid covers it now. The
// tier follows the new owners (TierOf, TierWithDepartments) but never drops
// below the tier the report had reached: an escalation is not undone by a
// boundary edit.
func Reroute(a *gridmap.Assignment, layer *gridmap.Layer, primary []gridmap.GridRef, coOwners []gridmap.Owner) {
	f := primary[len(primary)-1]
	a.Primary = &gridmap.Owner{Code: f.Code, Name: f.Name, Level: f.Level, Chain: primary}
	a.CoOwners = coOwners
	chains := [][]gridmap.GridRef{primary}
	for _, o := range coOwners {
		chains = append(chains, o.Chain)
	}
	tier, _ := TierWithDepartments(TierOf(layer, chains), len(a.Departments))
	if !TierAtLeast(a.Tier, tier) {
		a.Tier = tier
	}
	a.Flags = slices.DeleteFunc(a.Flags, func(f string) bool {
		return f == gridmap.FlagOutsideCoverage || f == gridmap.FlagDutyDesk
	})
}

// CheckAssignee returns EINVALID for an assignee named with another move
// than dispatch: only dispatching sends a report to a person.
func CheckAssignee(action, assignee string) error {
	if assignee != "" && action != ActionDispatch {
		return gridmap.Errorf(gridmap.EINVALID, "assignee goes with action dispatch only, not %s; leave it out", action)
	}
	return nil
}

// AssigneeAfter is who a report is with after a move naming assignee:
// a dispatch sends it to the worker it names, or, naming none, to its
// departments and no person (assignee ""); every other move leaves it
// with whom it was (keep).
func AssigneeAfter(action, assignee string) (after string, keep bool) {
	if action != ActionDispatch {
		return "", true
	}
	return assignee, false
}

// AssigneeRole is the role of the accounts a report can be dispatched to:
// grid workers sign in as reporters.
const AssigneeRole = gridmap.RoleReporter

package dispatch

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
)

func TestApply(t *testing.T) {
	cal := &Calendar{Location: time.UTC}
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC) // a Monday
	cat := &gridmap.Category{Code: "c", Departments: []string{"cg", "police"}, Limit: gridmap.Limit{Value: 3, Clock: gridmap.ClockCalendarDays},
		UrgentLimit: &gridmap.Limit{Value: 4, Clock: gridmap.ClockUrgentHours},
		StepLimits:  map[string]gridmap.Limit{"register": {Value: 1, Clock: gridmap.ClockUrgentHours}, "start": {Value: 2, Clock: gridmap.ClockUrgentHours}}}
	stepDue := t0.Add(time.Hour)
	reported := State{Status: gridmap.StatusReported, Assignment: gridmap.Assignment{Tier: gridmap.TierGrid, DueAt: t0.Add(72 * time.Hour),
		NextStep: ActionRegister, StepDueAt: &stepDue, Departments: []gridmap.DepartmentUnit{{Code: "cg"}, {Code: "police"}}}}
	registered := reported
	registered.Status, registered.Assignment.NextStep, registered.Assignment.StepDueAt = gridmap.StatusRegistered, ActionDispatch, nil
	at := t0.Add(30 * time.Minute)

	cases := []struct {
		name  string
		state State
		move  Move
		check func(t *testing.T, out Outcome, err error)
	}{
		{"register moves on and times the next step", reported, Move{Action: ActionRegister, At: at, Category: cat, Calendar: cal},
			func(t *testing.T, out Outcome, err error) {
				a := out.State.Assignment
				if err != nil || out.State.Status != gridmap.StatusRegistered || a.NextStep != ActionDispatch || a.StepDueAt != nil {
					t.Errorf("%v %+v", err, out.State)
				}
				if out.DeadlineAt == nil || !out.DeadlineAt.Equal(t0.Add(72*time.Hour)) {
					t.Errorf("next deadline %v, want the overall one", out.DeadlineAt)
				}
			}},
		{"a move the workflow does not allow is a conflict", reported, Move{Action: ActionClose, At: at, Calendar: cal},
			func(t *testing.T, out Outcome, err error) {
				if gridmap.ErrorCode(err) != gridmap.ECONFLICT {
					t.Errorf("%v, want ECONFLICT", err)
				}
			}},
		{"escalate raises the tier and calls the report's departments in", registered, Move{Action: ActionEscalate, At: at, Calendar: cal},
			func(t *testing.T, out Outcome, err error) {
				if err != nil || out.State.Assignment.Tier != gridmap.TierStreet || strings.Join(out.Tasks, ",") != "cg,police" ||
					!out.TaskDue.After(at) || out.State.EscalatedFor != nil {
					t.Errorf("%v %+v", err, out)
				}
			}},
		{"escalate calls in the departments named, once each", registered, Move{Action: ActionEscalate, Departments: []string{"police", "police"}, At: at, Calendar: cal},
			func(t *testing.T, out Outcome, err error) {
				if err != nil || strings.Join(out.Tasks, ",") != "police" || strings.Join(out.Departments, ",") != "police" {
					t.Errorf("%v %+v", err, out)
				}
			}},
		{"report_in closes the open tasks named", withTasks(registered, "cg"), Move{Action: ActionReportIn, Departments: []string{"cg", "cg"}, At: at, Calendar: cal},
			func(t *testing.T, out Outcome, err error) {
				if err != nil || strings.Join(out.ReportedIn, ",") != "cg" {
					t.Errorf("%v %+v", err, out)
				}
			}},
		{"report_in of a department not called in is a conflict", withTasks(registered, "cg"), Move{Action: ActionReportIn, Departments: []string{"police"}, At: at, Calendar: cal},
			func(t *testing.T, out Outcome, err error) {
				if gridmap.ErrorCode(err) != gridmap.ECONFLICT {
					t.Errorf("%v, want ECONFLICT", err)
				}
			}},
		{"report_in without departments is invalid", withTasks(registered, "cg"), Move{Action: ActionReportIn, At: at, Calendar: cal},
			func(t *testing.T, out Outcome, err error) {
				if gridmap.ErrorCode(err) != gridmap.EINVALID {
					t.Errorf("%v, want EINVALID", err)
				}
			}},
		{"extend grants the urgent limit again from now", dispatched(registered), Move{Action: ActionExtend, At: at, Category: cat, Urgent: true, Calendar: cal},
			func(t *testing.T, out Outcome, err error) {
				if err != nil || !out.State.Assignment.DueAt.Equal(at.Add(4*time.Hour)) || !out.DeadlineAt.Equal(t0.Add(2*time.Hour)) {
					t.Errorf("%v due %v, next deadline %v", err, out.State.Assignment.DueAt, out.DeadlineAt)
				}
			}},
		{"suspend stops the clock and remembers the status; resume returns to it", registered, Move{Action: ActionSuspend, At: at, Category: cat, Calendar: cal},
			func(t *testing.T, out Outcome, err error) {
				if err != nil || out.State.Status != gridmap.StatusSuspended || out.State.ResumeTo != gridmap.StatusRegistered || out.DeadlineAt != nil {
					t.Fatalf("%v %+v", err, out)
				}
				back, err := Apply(out.State, Move{Action: ActionResume, At: at, Category: cat, Calendar: cal})
				if err != nil || back.State.Status != gridmap.StatusRegistered || back.State.ResumeTo != "" || back.DeadlineAt == nil {
					t.Errorf("resume: %v %+v", err, back)
				}
			}},
		{"an overdue escalation fires whatever the step, and notes the step's deadline", reported,
			Move{Action: ActionEscalate, At: t0.Add(2 * time.Hour), Category: cat, Calendar: cal, Deadline: &stepDue},
			func(t *testing.T, out Outcome, err error) {
				if err != nil || out.State.Status != gridmap.StatusReported || out.State.Assignment.Tier != gridmap.TierStreet ||
					!strings.Contains(out.Note, "register step deadline") || len(out.Tasks) != 2 {
					t.Fatalf("%v %+v", err, out)
				}
				if out.State.EscalatedFor == nil || !out.State.EscalatedFor.Equal(stepDue) || !out.DeadlineAt.Equal(t0.Add(72*time.Hour)) {
					t.Errorf("after the step deadline: escalated for %v, next %v; want the overall deadline next", out.State.EscalatedFor, out.DeadlineAt)
				}
				overall := t0.Add(72 * time.Hour)
				again, err := Apply(out.State, Move{Action: ActionEscalate, At: t0.Add(73 * time.Hour), Category: cat, Calendar: cal, Deadline: &overall})
				if err != nil || again.State.Assignment.Tier != gridmap.TierDistrict || again.DeadlineAt != nil || strings.Contains(again.Note, "step") {
					t.Errorf("after the overall deadline: %v %+v", err, again)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := Apply(c.state, c.move)
			c.check(t, out, err)
		})
	}
}

func withTasks(s State, departments ...string) State {
	s.OpenTasks = departments
	return s
}

func dispatched(s State) State {
	s.Status = gridmap.StatusDispatched
	due := s.Assignment.DueAt.Add(-70 * time.Hour) // 2 h after t0: the start step's limit
	s.Assignment.NextStep, s.Assignment.StepDueAt = ActionStart, &due
	return s
}

func TestNextDeadline(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	step, due := t0.Add(time.Hour), t0.Add(72*time.Hour)
	fired := func(t time.Time) *time.Time { return &t }
	cases := []struct {
		name         string
		status       string
		step         *time.Time
		escalatedFor *time.Time
		want         *time.Time
	}{
		{"the step's deadline comes first", gridmap.StatusReported, &step, nil, &step},
		{"after it fired, the overall deadline", gridmap.StatusReported, &step, fired(step), &due},
		{"after both fired, none", gridmap.StatusReported, &step, fired(due), nil},
		{"no step limit: the overall deadline", gridmap.StatusRegistered, nil, nil, &due},
		{"a suspended report waits for none", gridmap.StatusSuspended, &step, nil, nil},
		{"a closed report waits for none", gridmap.StatusClosed, nil, nil, nil},
		{"a step later than the overall deadline comes second", gridmap.StatusDispatched, fired(due.Add(time.Hour)), fired(due), fired(due.Add(time.Hour))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := NextDeadline(State{Status: c.status, EscalatedFor: c.escalatedFor,
				Assignment: gridmap.Assignment{DueAt: due, StepDueAt: c.step}})
			if (got == nil) != (c.want == nil) || (got != nil && !got.Equal(*c.want)) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestStatusFilter(t *testing.T) {
	cases := []struct {
		filter   string
		statuses string
		negate   bool
	}{
		{"", "", false},
		{"open", "closed,rejected", true},
		{"done", "closed,rejected", false},
		{"registered", "registered", false},
	}
	for _, c := range cases {
		s, n := StatusFilter(c.filter)
		if strings.Join(s, ",") != c.statuses || n != c.negate {
			t.Errorf("%q: %v %v", c.filter, s, n)
		}
	}
	if Open(gridmap.StatusClosed) || !Open(gridmap.StatusSuspended) {
		t.Error("Open disagrees with DoneStatuses")
	}
}

// TestMoves: every move offered is one the workflow takes, and every
// action refused is not offered.
func TestMoves(t *testing.T) {
	all := []string{ActionRegister, ActionDispatch, ActionStart, ActionResolve, ActionVerify, ActionClose, ActionReject,
		ActionEscalate, ActionExtend, ActionSuspend, ActionResume, ActionReportIn}
	statuses := []string{gridmap.StatusReported, gridmap.StatusRegistered, gridmap.StatusDispatched, gridmap.StatusInProgress,
		gridmap.StatusResolved, gridmap.StatusVerified, gridmap.StatusClosed, gridmap.StatusRejected, gridmap.StatusSuspended}
	for _, status := range statuses {
		moves := Moves(status, true)
		for _, a := range all {
			_, err := Next(status, a, gridmap.StatusRegistered)
			if offered := slices.Contains(moves, a); offered != (err == nil) {
				t.Errorf("%s report, %s: offered %v, but the workflow says %v", status, a, offered, err)
			}
		}
		if step := nextStep[status]; step != "" && (len(moves) == 0 || moves[0] != step) {
			t.Errorf("%s report: moves %v do not start with the step it waits for, %s", status, moves, step)
		}
		if slices.Contains(Moves(status, false), ActionReportIn) {
			t.Errorf("%s report without open tasks is offered report_in", status)
		}
	}
	if got := Moves(gridmap.StatusClosed, true); len(got) != 0 {
		t.Errorf("a closed report is offered %v", got)
	}
}

func TestAssigneeAfter(t *testing.T) {
	for _, tc := range []struct {
		name, action, assignee string
		want                   string
		keep                   bool
	}{
		{"a dispatch naming a worker sends the report to them", ActionDispatch, "wang", "wang", false},
		{"a dispatch naming nobody leaves it with its departments only", ActionDispatch, "", "", false},
		{"an escalation keeps the worker", ActionEscalate, "", "", true},
		{"starting the work keeps the worker", ActionStart, "", "", true},
		{"a reroute keeps the worker", ActionReroute, "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, keep := AssigneeAfter(tc.action, tc.assignee)
			if got != tc.want || keep != tc.keep {
				t.Errorf("AssigneeAfter(%q, %q) = %q, %v; want %q, %v", tc.action, tc.assignee, got, keep, tc.want, tc.keep)
			}
		})
	}
}

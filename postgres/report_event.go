package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/jackc/pgx/v5"
)

// Every report event (intake, a dispatcher's move, an overdue escalation, a
// re-route) is written by one statement built from eventSQL: the event row,
// the report-in tasks it opens or closes, an outbox row for each of the
// report's departments with a webhook, and the change notice for tiles and
// the live feed. The statement starts with a CTE r that stores the report's
// new state and returns its id, the event time and the notice payload;
// intake inserts the row (intakeSQL), every later event updates it
// (moveSQL). What the event does to the report is decided beforehand by
// dispatch, so the SQL holds no rule.
const eventSQL = `,
	e AS (
	  INSERT INTO report_events (report_id, action, from_status, to_status, actor, note, departments, data, at)
	  SELECT r.id, $1, nullif($2, ''), $3, $4, $5, $6, $7, r.at FROM r
	  RETURNING id, report_id, at),
	opened AS (
	  INSERT INTO report_tasks (report_id, department, report_in_due)
	  SELECT e.report_id, d, $8 FROM e, unnest($9::text[]) d
	  ON CONFLICT (report_id, department) WHERE status = 'open' DO NOTHING),
	closed AS (
	  UPDATE report_tasks t SET status = 'reported_in', reported_in_at = e.at FROM e
	  WHERE t.report_id = e.report_id AND t.department = ANY($10::text[]) AND t.status = 'open'),
	o AS (
	  INSERT INTO outbox (department, url, event_id, payload)
	  SELECT d.code, d.webhook_url, e.id, $11::jsonb || jsonb_build_object('event_id', e.id, 'report_id', e.report_id)
	  FROM e, departments d WHERE d.code = ANY($12::text[]) AND d.webhook_url <> ''),
	n AS (SELECT pg_notify('` + ReportChannel + `', r.box) FROM r)
	SELECT e.id, e.report_id, e.at FROM e, n`

// eventArgs are the parameters $1-$12 of eventSQL.
func eventArgs(ev *gridmap.ReportEvent, out *dispatch.Outcome, about eventAbout) []any {
	a := &out.State.Assignment
	notice := map[string]any{"event": "report", "action": ev.Action, "external_id": about.externalID,
		"category": about.category, "status": ev.To, "note": ev.Note, "departments": ev.Departments, "assignment": a}
	if ev.From != "" {
		notice["from"] = ev.From
	}
	payload, _ := json.Marshal(notice)
	// The report's departments hear of it, and so do those an escalation
	// calls in.
	recipients := dispatch.DepartmentCodes(a)
	for _, d := range out.Tasks {
		if !slices.Contains(recipients, d) {
			recipients = append(recipients, d)
		}
	}
	var data []byte
	if len(ev.Data) > 0 {
		data = ev.Data
	}
	return []any{ev.Action, ev.From, ev.To, ev.Actor, ev.Note, ev.Departments, data,
		out.TaskDue, nonNil(out.Tasks), nonNil(out.ReportedIn), payload, recipients}
}

// eventAbout is what a webhook payload says of the report besides its
// state.
type eventAbout struct{ externalID, category string }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// moveSQL records an event on a stored report ($13, in its month: run as
// onReport(moveSQL, id)) and sets its state,
// provided the report is still at revision $21 (NULL: the caller holds
// its row lock), and its assignee to $23 (empty: nobody) unless $24 keeps it
// (dispatch.AssigneeAfter).
const moveSQL = `WITH r AS (
	  UPDATE {report} reports SET status = $3, resume_status = nullif($14, ''), tier = $15, due_at = $16, assignment = $17,
	    primary_code = $18, deadline_at = $19, escalated_due_at = $20, scope_codes = $22, revision = revision + 1, updated_at = now(),
	    assignee = CASE WHEN $24::boolean THEN assignee ELSE nullif($23::text, '') END
	  WHERE id = $13 AND ($21::bigint IS NULL OR revision = $21)
	  RETURNING id, now() AS at, ` + reportBoxSQL + ` AS box)` + eventSQL

// errMoved says a report moved on between reading it and writing its next
// event.
var errMoved = errors.New("the report moved on meanwhile")

// recordEvent writes one event of report id, with the state out leaves it
// in, through q. The report is either locked by q's transaction (revision
// nil) or must still be at *revision, else recordEvent returns errMoved
// and writes nothing. ev gets its id, report and time.
func recordEvent(ctx context.Context, q querier, id int64, revision *int64, ev *gridmap.ReportEvent, out *dispatch.Outcome, about eventAbout) error {
	err := q.QueryRow(ctx, onReport(moveSQL, id), moveArgs(id, revision, ev, out, about)...).Scan(&ev.ID, &ev.ReportID, &ev.At)
	if revision != nil && errors.Is(err, pgx.ErrNoRows) {
		return errMoved
	}
	return err
}

// moveArgs are the parameters of moveSQL.
func moveArgs(id int64, revision *int64, ev *gridmap.ReportEvent, out *dispatch.Outcome, about eventAbout) []any {
	s := &out.State
	if ev.Departments == nil {
		ev.Departments = []string{}
	}
	var primary *string
	if s.Assignment.Primary != nil {
		primary = &s.Assignment.Primary.Code
	}
	assignment, _ := json.Marshal(s.Assignment)
	assignee, keep := dispatch.AssigneeAfter(ev.Action, ev.Assignee)
	return append(eventArgs(ev, out, about), id, s.ResumeTo, s.Assignment.Tier, s.Assignment.DueAt, assignment,
		primary, out.DeadlineAt, s.EscalatedFor, revision, gridmap.ReportScopeCodes(&s.Assignment), assignee, keep)
}

// stateColumns are what a move reads of a report (alias r): its revision,
// its workflow state, its category with limits, and its open tasks.
const stateColumns = `r.id, r.revision, r.external_id, r.category, r.urgent, r.status, coalesce(r.resume_status, ''), r.assignment, r.escalated_due_at,
	(SELECT ` + categoryObject + ` FROM categories WHERE code = r.category),
	(SELECT coalesce(array_agg(t.department ORDER BY t.department), '{}') FROM report_tasks t WHERE t.report_id = r.id AND t.status = 'open')`

// categoryObject is a category row as the JSON of gridmap.Category.
const categoryObject = `json_build_object('code', code, 'name', name, 'departments', departments,
	'limit', json_build_object('value', limit_value, 'clock', limit_clock),
	'urgent_limit', CASE WHEN urgent_value IS NULL THEN NULL ELSE json_build_object('value', urgent_value, 'clock', urgent_clock) END,
	'step_limits', step_limits, 'duplicate_within_m', duplicate_within_m, 'duplicate_within_hours', duplicate_within_hours)`

// lockedReport is a report as a move reads it: under its row lock in
// overdue escalation and re-routes, at a revision in AddEvent.
type lockedReport struct {
	id       int64
	revision int64
	about    eventAbout
	urgent   bool
	state    dispatch.State
	category *gridmap.Category // nil when the category was deleted
}

func scanLocked(row pgx.Row) (*lockedReport, error) {
	var l lockedReport
	var assignment, category []byte
	if err := row.Scan(&l.id, &l.revision, &l.about.externalID, &l.about.category, &l.urgent, &l.state.Status, &l.state.ResumeTo,
		&assignment, &l.state.EscalatedFor, &category, &l.state.OpenTasks); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(assignment, &l.state.Assignment); err != nil {
		return nil, err
	}
	if category != nil {
		l.category = &gridmap.Category{}
		if err := json.Unmarshal(category, l.category); err != nil {
			return nil, err
		}
	}
	return &l, nil
}

// AddEvent moves a report through the workflow: it reads the report (its
// state, category and the calendar, in one statement), lets dispatch.Apply
// decide what the move does, and writes the event in one statement that
// applies only if the report is still at the revision read; if another
// move got there first, it reads again and decides again. So two racing
// moves cannot both apply, and no connection is held between the read and
// the write. Returns ENOTFOUND, ECONFLICT for a move the workflow does not
// allow, EINVALID for departments that do not exist.
func (s *ReportStore) AddEvent(ctx context.Context, id int64, e *gridmap.ReportEvent) (*gridmap.Report, error) {
	named := e.Departments // as the caller named them, for every attempt
	for attempt := 1; ; attempt++ {
		e.Departments = named
		r, err := s.addEvent(ctx, id, e)
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, errMoved) {
			return nil, translate(err, "report "+strconv.FormatInt(id, 10))
		}
		if attempt == maxMoveAttempts {
			return nil, gridmap.Errorf(gridmap.EUNAVAILABLE, "report %d kept changing while %q was applied; try again", id, e.Action)
		}
		// Racing movers spread out rather than collide again at once.
		select {
		case <-ctx.Done():
			return nil, translate(ctx.Err(), "report "+strconv.FormatInt(id, 10))
		case <-time.After(time.Duration(rand.Int64N(int64(attempt) * int64(time.Millisecond)))):
		}
	}
}

// maxMoveAttempts bounds how often a move is decided again when other
// moves of the same report keep getting there first (with the pauses
// between, about a second and a half of them at most).
const maxMoveAttempts = 50

// addEvent reads the report, decides the move and writes it with the
// report as it then is read back in the same round trip (a batch runs as
// one implicit transaction, so the read sees the write).
func (s *ReportStore) addEvent(ctx context.Context, id int64, e *gridmap.ReportEvent) (*gridmap.Report, error) {
	now := time.Now()
	var days []byte
	l, err := scanLocked(rowWith{s.db.Pool.QueryRow(ctx, onReport(`SELECT `+stateColumns+`, (`+calendarDays("$2")+`) FROM {report} r WHERE r.id = $1`, id),
		id, calendarDate(s.tz, now)), &days})
	if noReport(err, id) {
		return nil, gridmap.Errorf(gridmap.ENOTFOUND, "report %d does not exist", id)
	} else if err != nil {
		return nil, err
	}
	if err := checkReportInScope(ctx, id, &l.state.Assignment); err != nil {
		return nil, err
	}
	if err := s.checkAssignee(ctx, e); err != nil {
		return nil, err
	}
	cal, err := calendarOf(s.tz, days)
	if err != nil {
		return nil, err
	}
	out, err := dispatch.Apply(l.state, dispatch.Move{Action: e.Action, Departments: e.Departments, At: now,
		Category: l.category, Urgent: l.urgent, Calendar: cal})
	if err != nil {
		return nil, err
	}
	e.From, e.To, e.Departments = l.state.Status, out.State.Status, out.Departments
	batch := &pgx.Batch{}
	batch.Queue(onReport(moveSQL, id), moveArgs(id, &l.revision, e, &out, l.about)...)
	batch.Queue(onReport(`SELECT `+reportColumns+` FROM {report} reports WHERE id = $1`, id), id)
	br := s.db.Pool.SendBatch(ctx, batch)
	defer br.Close()
	err = br.QueryRow().Scan(&e.ID, &e.ReportID, &e.At)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, errMoved
	case isSQLState(err, "23503"):
		return nil, gridmap.Errorf(gridmap.EINVALID, "departments %v: some do not exist (GET /v1/departments lists them)", out.Tasks)
	case err != nil:
		return nil, err
	}
	r, err := scanReport(br.QueryRow())
	if err != nil {
		return nil, err
	}
	return r, br.Close()
}

// readCalendar reads, through q, the dates around t that break the weekday
// rule.
func readCalendar(ctx context.Context, q querier, tz *time.Location, t time.Time) (*dispatch.Calendar, error) {
	var days []byte
	if err := q.QueryRow(ctx, calendarDays("$1"), calendarDate(tz, t)).Scan(&days); err != nil {
		return nil, translate(err, "calendar")
	}
	return calendarOf(tz, days)
}

// calendarDate is the date parameter of calendarDays for deadlines counted
// from t.
func calendarDate(tz *time.Location, t time.Time) string { return t.In(tz).Format(time.DateOnly) }

// calendarOf is the calendar in tz whose days calendarDays read.
func calendarOf(tz *time.Location, days []byte) (*dispatch.Calendar, error) {
	cal := &dispatch.Calendar{Location: tz, Days: map[string]bool{}}
	if err := json.Unmarshal(days, &cal.Days); err != nil {
		return nil, err
	}
	return cal, nil
}

// calendarDays is a query of the calendar days from a week before the date
// in parameter param to 400 days after, as a JSON object of date ->
// working: every deadline counted from that date falls in it.
func calendarDays(param string) string {
	return `SELECT coalesce(json_object_agg(to_char(day, 'YYYY-MM-DD'), working), '{}') FROM calendar_days
	WHERE day BETWEEN ` + param + `::date - 7 AND ` + param + `::date + 400`
}

// checkAssignee checks the worker a move names, if any: with a dispatch
// only, an enabled account of dispatch.AssigneeRole and, for a scoped
// caller, a worker of its area (Scope.HoldsWorker on the chain of the
// worker's grid); it records the assignee in the event's data. Returns
// EINVALID saying what to fix, the same for a name that is no account and
// one the caller may not dispatch to, so that names cannot be probed.
func (s *ReportStore) checkAssignee(ctx context.Context, e *gridmap.ReportEvent) error {
	if e.Assignee == "" {
		return nil
	}
	if err := dispatch.CheckAssignee(e.Action, e.Assignee); err != nil {
		return err
	}
	refused := gridmap.Errorf(gridmap.EINVALID, "assignee %q is not an enabled grid worker (a %s account) you may dispatch to; name a username GET /v1/workers lists",
		e.Assignee, dispatch.AssigneeRole)
	var role string
	var disabled bool
	var layer, grid *string
	err := s.db.Pool.QueryRow(ctx, `SELECT role, disabled_at IS NOT NULL, person_layer, person_grid FROM accounts WHERE username = $1`,
		e.Assignee).Scan(&role, &disabled, &layer, &grid)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return refused
	case err != nil:
		return translate(err, "assignee "+e.Assignee)
	case role != dispatch.AssigneeRole || disabled:
		return refused
	}
	if sc := scopeOf(ctx); sc != nil {
		if layer == nil {
			return refused
		}
		var codes []string
		if err := s.db.Pool.QueryRow(ctx, gridChainSQL, *layer, *grid).Scan(&codes); err != nil {
			return translate(err, "assignee "+e.Assignee)
		}
		if !sc.HoldsWorker(&gridmap.WorkerGrid{Layer: *layer, Codes: codes}) {
			return refused
		}
	}
	e.Data, _ = json.Marshal(map[string]string{"assignee": e.Assignee})
	return nil
}

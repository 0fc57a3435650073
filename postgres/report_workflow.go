package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb/geojson"
)

const reportColumns = `id, external_id, category, description, ST_AsGeoJSON(location), original, crs, accuracy_m, source,
	urgent, reported_at, received_at, status, assignment, updated_at,
	(SELECT coalesce(json_agg(json_build_object('department', t.department, 'status', t.status, 'report_in_due', t.report_in_due,
	   'reported_in_at', t.reported_in_at, 'created_at', t.created_at) ORDER BY t.id), '[]')
	 FROM report_tasks t WHERE t.report_id = reports.id),
	duplicate_of, (SELECT array_agg(d.id) FROM (SELECT d.id FROM report_duplicates d WHERE d.of = reports.id ORDER BY d.id
	   LIMIT ` + listedDuplicates + `) d), coalesce(assignee, ''), coalesce(filed_by, '')`

// listedDuplicates is how many of its duplicates a report lists with itself
// (gridmap.Report.Duplicates): a report a whole street filed again keeps a
// bounded size.
const listedDuplicates = "100"

func scanReport(row pgx.Row) (*gridmap.Report, error) { return scanReportWith(row) }

// scanReportWith scans leading values, then a report's reportColumns.
func scanReportWith(row pgx.Row, leading ...any) (*gridmap.Report, error) {
	var r gridmap.Report
	var loc string
	var original, assignment, tasks []byte
	dest := append(leading, &r.ID, &r.ExternalID, &r.Category, &r.Description, &loc, &original, &r.CRS, &r.AccuracyM, &r.Source,
		&r.Urgent, &r.ReportedAt, &r.ReceivedAt, &r.Status, &assignment, &r.UpdatedAt, &tasks, &r.DuplicateOf, &r.Duplicates, &r.Assignee, &r.FiledBy)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	g, err := geojson.UnmarshalGeometry([]byte(loc))
	if err != nil {
		return nil, err
	}
	r.Location = g
	if original != nil {
		if r.OriginalLocation, err = geojson.UnmarshalGeometry(original); err != nil {
			return nil, err
		}
	}
	r.Assignment = &gridmap.Assignment{}
	if err := json.Unmarshal(assignment, r.Assignment); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(tasks, &r.Tasks); err != nil {
		return nil, err
	}
	return &r, nil
}

// Report returns one report. Returns ENOTFOUND.
func (s *ReportStore) Report(ctx context.Context, id int64) (*gridmap.Report, error) {
	r, err := scanReport(s.db.Pool.QueryRow(ctx, onReport(`SELECT `+reportColumns+` FROM {report} reports WHERE id = $1`, id), id))
	if noReport(err, id) {
		return nil, gridmap.Errorf(gridmap.ENOTFOUND, "report %d does not exist", id)
	} else if err != nil {
		return nil, translate(err, "report "+strconv.FormatInt(id, 10))
	}
	if err := checkReportInScope(ctx, id, r.Assignment); err != nil {
		return nil, err
	}
	return r, nil
}

// Reports returns a page of reports in the filter's order, newest first
// unless it says deadline. A category filter selects the category and its
// subcategories. Returns EINVALID for a category that does not exist, Mine
// without a signed-in caller, a sort that is not one, or a cursor of
// another order.
func (s *ReportStore) Reports(ctx context.Context, f gridmap.ReportFilter) ([]*gridmap.Report, *gridmap.ReportCursor, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	if f.Sort == "" {
		f.Sort = gridmap.SortArrival
	}
	if f.Cursor != nil && cmp.Or(f.Cursor.Sort, gridmap.SortArrival) != f.Sort {
		return nil, nil, gridmap.Errorf(gridmap.EINVALID, "the cursor is one of sort=%s, not sort=%s; pass the \"next\" value of the previous page, with the same sort",
			f.Cursor.Sort, f.Sort)
	}
	args, err := s.filterArgs(ctx, f)
	if err != nil {
		return nil, nil, err
	}
	statements := reportListSQL[boolIndex(f.Mine)]
	var query string
	var dueAt time.Time // of the row last scanned, in deadline order
	var leading []any
	serial := false // planned without parallel workers
	switch f.Sort {
	case gridmap.SortArrival:
		before := int64(math.MaxInt64) // the first page
		if f.Cursor != nil {
			before = f.Cursor.ID
		}
		query, args = statements.byArrival, append(args, before, f.Limit+1)
		window := f.Since != nil && f.Until != nil && f.Until.Sub(*f.Since) <= listWindowSpan && time.Since(*f.Until) > f.Until.Sub(*f.Since)
		scoped := scopeOf(ctx) != nil && !f.Mine && f.Grid == "" && f.IDs == nil && f.DuplicateOf == 0 && f.BBox == nil
		switch {
		case scoped && (window || f.Status == "" && !f.Overdue):
			// From the scope grid's reports. A filter that picks a few
			// reports by another index starts there; so does one of
			// statuses over all time, which may be a few of the grid's
			// many (those reported and not yet registered).
			query, serial = statements.byArrivalInScope, true
		case window:
			query = statements.byArrivalInWindow
		}
	case gridmap.SortDeadline:
		var afterDue *time.Time // NULL: the first page
		var afterID int64
		if f.Cursor != nil {
			afterDue, afterID = &f.Cursor.DueAt, f.Cursor.ID
		}
		query, args, leading = statements.byDeadline, append(args, afterDue, afterID, f.Limit+1), []any{&dueAt}
	default:
		return nil, nil, gridmap.Errorf(gridmap.EINVALID, "sort %q must be %s or %s", f.Sort, gridmap.SortArrival, gridmap.SortDeadline)
	}
	// Planned for its own filters each time (an unnamed statement): a plan
	// cached for any filters, which PostgreSQL picks once its estimate is
	// no worse than the plans made so far, cannot use an index for any of
	// them, and sorted every report of a district for its first page (0.3 s
	// with 300,000 reports in the table).
	args = append([]any{pgx.QueryExecModeDescribeExec}, args...)
	var out []*gridmap.Report
	var next *gridmap.ReportCursor
	page := func(db querier) error {
		out, next = nil, nil
		rows, err := db.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if len(out) == f.Limit {
				// A row past the page: the next page starts after the last
				// report kept, whose due_at dueAt still holds.
				next = &gridmap.ReportCursor{Sort: f.Sort, ID: out[len(out)-1].ID, DueAt: dueAt}
				break
			}
			r, err := scanReportWith(rows, leading...)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		rows.Close()
		return rows.Err()
	}
	if serial {
		// The planner sees tens of thousands of the grid's entries to
		// sort and starts two workers, which took 70 ms of a 95 ms page on
		// two cores; the sort alone is a few milliseconds.
		err = s.db.readSerially(ctx, pgx.ReadCommitted, page)
	} else {
		err = page(s.db.Pool)
	}
	if err != nil {
		return nil, nil, translate(err, "reports")
	}
	return out, next, nil
}

// readSerially runs read in a read-only transaction at isolation level
// iso, its statements planned without parallel workers: for statements
// whose few milliseconds of work the workers' start would multiply on a
// machine of few cores.
func (db *DB) readSerially(ctx context.Context, iso pgx.TxIsoLevel, read func(q querier) error) error {
	return pgx.BeginTxFunc(ctx, db.Pool, pgx.TxOptions{IsoLevel: iso, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL max_parallel_workers_per_gather = 0`); err != nil {
			return err
		}
		return read(tx)
	})
}

// listWindowSpan is the longest window of reported_at that a report list
// in arrival order reads whole (byArrivalInWindow): a season of a busy
// district is a few hundred thousand reports. The window must also have
// ended longer ago than it lasts: walking ids down from the newest then
// passes more reports than the window holds. For longer windows, windows
// open at either end and recent ones (this month), the walk is cheaper.
const listWindowSpan = 93 * 24 * time.Hour

// boolIndex is 1 for true, 0 for false.
func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// filterCategories is the position in filterArgs' parameters of $6, the
// category codes.
const filterCategories = 5

// filterArgs are the parameters $1 to $16 of reportFilterSQL: f's filters
// and the scope of ctx's caller. Returns EINVALID for a category that does
// not exist and for Mine without a signed-in caller.
func (s *ReportStore) filterArgs(ctx context.Context, f gridmap.ReportFilter) ([]any, error) {
	categories, err := s.db.categorySubtree(ctx, f.Category)
	if err != nil {
		return nil, err
	}
	if f.IDs, err = s.duplicateIDs(ctx, f); err != nil {
		return nil, err
	}
	var bbox []float64
	if f.BBox != nil {
		bbox = []float64{f.BBox.Min[0], f.BBox.Min[1], f.BBox.Max[0], f.BBox.Max[1]}
	}
	var actor *string
	if f.Mine {
		c := gridmap.CallerFrom(ctx)
		if c == nil || c.Kind == gridmap.CallerAnonymous || c.Actor() == "" {
			return nil, gridmap.Errorf(gridmap.EINVALID, "mine=true needs a signed-in caller: it selects the reports whose history names you; sign in or send a token")
		}
		a := c.Actor()
		actor = &a
	}
	var late []string // the statuses whose clock stops, for the overdue filter; nil for none
	if f.Overdue {
		late = dispatch.ClockStopped
	}
	statuses, negate := dispatch.StatusFilter(f.Status)
	scopeLayer, scopeCode := scopeParams(ctx)
	return []any{statuses, negate, f.Grid, f.Since, f.Until, categories, f.IDs, bbox, scopeLayer, scopeCode,
		f.Tier, f.Source, f.Urgent, late, true, actor}, nil
}

// reportFilterSQL is true for a report (table reports) the filter
// parameters select; a NULL or empty parameter selects everything.
// $1, $2 the statuses and whether they are negated (dispatch.StatusFilter);
// $3 the primary grid's code; $4, $5 reported at or after, before; $6 the
// category codes (categorySubtree); $7 ids; $8 a bbox (min lon, min lat,
// max lon, max lat); $9, $10 the caller's scope (scopeParams); $11 the
// tier; $12 the source; $13 urgent; $14, $15 for overdue reports only
// (due_at passed while the clock runs): dispatch.ClockStopped and true,
// read as $1, $2 are; $16 an
// actor, with mine only (NULL without).
//
// With mine, a report's history names the actor $16: alone, or acting for
// someone ("token:cad for operator 12", as the server writes it). It is
// written as a semi-join, not under "$16 IS NULL OR", so that the planner
// may start from the actor's events (report_events_actor) when they are
// few, in generic plans too. The prefix is matched by a range, not LIKE:
// an actor's "_" or "%" is no wildcard, and the range reads the
// text_pattern_ops index under any collation. The index holds the first
// actorKey characters of an actor (an actor a system names can be long;
// a b-tree entry cannot): a caller's actor is much shorter (usernames and
// token names have at most 64 characters), so matching that prefix is
// matching the actor.
//
// scope is the condition on the caller's scope ($9, $10): reportInScopeSQL,
// reportInScopeByTimeSQL or reportInScopeRowSQL.
func reportFilterSQL(mine bool, scope string) string {
	where := `($1::text[] IS NULL OR (status = ANY($1)) <> $2) AND ` + scope + `
	AND ($3 = '' OR primary_code = $3)
	AND ($4::timestamptz IS NULL OR reported_at >= $4) AND ($5::timestamptz IS NULL OR reported_at < $5)
	AND ` + reportsFromSQL("id", "$4::timestamptz") + `
	AND ($6::text[] IS NULL OR category = ANY($6)) AND ($7::bigint[] IS NULL OR id = ANY($7))
	AND ($8::float8[] IS NULL OR location && ST_MakeEnvelope($8[1], $8[2], $8[3], $8[4], 4326))
	AND ($11 = '' OR tier = $11) AND ($12 = '' OR source = $12) AND ($13::boolean IS NULL OR urgent = $13)
	AND ($14::text[] IS NULL OR (due_at < now() AND (status = ANY($14)) <> $15))`
	if !mine {
		return where + ` AND $16::text IS NULL`
	}
	return where + `
	AND id IN (SELECT e.report_id FROM report_events e
	  WHERE left(e.actor, ` + actorKey + `) = $16
	     OR left(e.actor, ` + actorKey + `) ~>=~ ($16 || ' for ') AND left(e.actor, ` + actorKey + `) ~<~ ($16 || ' for!'))`
}

// reportScopeWindowSQL selects the rows s of report_scope (migration
// 00028) of the scope grid ($9, $10, not NULL) within the filter's window
// ($4, $5).
const reportScopeWindowSQL = `s.layer_id = $9 AND s.code = $10::text AND ($4::timestamptz IS NULL OR s.reported_at >= $4)
	    AND ($5::timestamptz IS NULL OR s.reported_at < $5)`

// reportInScopeByTimeSQL is reportFilterSQL's scope ($9, $10, not NULL)
// read from the scope grid's reports by time within the filter's window:
// for a window, where the index on scope_codes would read the grid's
// reports of every time. Each report's own codes are checked too, so that
// the table only ever narrows what the caller sees. (Not under an OR, so
// that the planner can join it, by its whole key.)
var reportInScopeByTimeSQL = `EXISTS (SELECT FROM report_scope s WHERE ` + reportScopeWindowSQL + `
	    AND s.reported_at = reports.reported_at AND s.report_id = reports.id) AND ` + reportInScopeRowSQL("reports", "$9", "$10")

// actorKey is how many leading characters of an event's actor
// report_events_actor holds (migration 00015).
const actorKey = "128"

// reportListSQL are the statements of a report list, [0] without the mine
// filter, [1] with it, all on reportFilterSQL's parameters.
var reportListSQL = [2]reportStatements{newReportStatements(false), newReportStatements(true)}

type reportStatements struct {
	// byArrival lists reports newest first: those before id $17, at
	// most $18.
	byArrival string
	// byArrivalInWindow is byArrival for a closed window of reported_at
	// ($4 to $5) of at most listWindowSpan: it finds the window's reports
	// by reported_at, then the newest. byArrival would walk ids down from
	// the newest report, past every report newer than the window (most
	// of a year of a busy district for last February), since the planner
	// cannot know that ids rise with reported_at.
	byArrivalInWindow string
	// byDeadline lists reports the earliest due first, each with its
	// due_at: those after due_at $17 (NULL: from the start) and id $18, at
	// most $19.
	byDeadline string
	// counts counts reports by status, with how many of each are past
	// their due_at.
	counts string
	// byArrivalInScope is byArrival for a scoped caller: the newest of its
	// grid's reports (report_scope, by id, migration 00031, or of a window
	// by time: the plan made for the window's values picks), each then
	// read by its id and checked against the rest of the filter, until the
	// page is full. byArrival walked every report down from the newest, checking
	// each one's scope: a grid with few reports or none read them all. The
	// read is a LATERAL subquery kept whole (OFFSET 0): joined, the planner
	// merged the window's rows with every month's reports by id, reading
	// each month after the window whole (reports received later may have
	// been reported in the window, so those months are not pruned): 0.2 to
	// 0.3 s for last February's page with a million reports over a year,
	// where each probe reads one month's index. The page's reports are
	// then read likewise (reportByIDSQL).
	byArrivalInScope string
	// countsInScopeWindow is counts for a scoped caller's window ($4
	// given): its grid's reports of the window by time.
	countsInScopeWindow string
}

// reportByIDSQL is a LATERAL subquery reading reportColumns of the report
// of id, a column of the rows before it: kept whole (OFFSET 0), each report
// is read in its month. Joined instead, the planner prices a probe of every
// month for each row and, for a page of a few hundred, hashes every report.
func reportByIDSQL(id string) string {
	return `(SELECT ` + reportColumns + ` FROM reports WHERE reports.id = ` + id + ` OFFSET 0)`
}

func newReportStatements(mine bool) reportStatements {
	where := reportFilterSQL(mine, reportInScopeSQL("reports", "$9", "$10"))
	return reportStatements{
		byArrivalInScope: `SELECT x.* FROM (
	  SELECT r.id FROM (SELECT s.report_id FROM report_scope s WHERE ` + reportScopeWindowSQL + ` AND s.report_id < $17
	      ORDER BY s.report_id DESC OFFSET 0) s
	    CROSS JOIN LATERAL (SELECT r.id FROM reports r WHERE r.id = s.report_id
	      AND ` + reportFilterSQL(mine, reportInScopeRowSQL("r", "$9", "$10")) + ` OFFSET 0) r
	  ORDER BY s.report_id DESC LIMIT $18) p
	CROSS JOIN LATERAL ` + reportByIDSQL("p.id") + ` x
	ORDER BY p.id DESC`,
		countsInScopeWindow: `SELECT status, count(*), count(*) FILTER (WHERE due_at < now()) FROM reports WHERE ` +
			reportFilterSQL(mine, reportInScopeByTimeSQL) + `
	GROUP BY status`,
		byArrival: `SELECT ` + reportColumns + ` FROM reports WHERE ` + where + `
	AND id < $17 ORDER BY id DESC LIMIT $18`,
		byArrivalInWindow: `SELECT x.* FROM (
	  SELECT id FROM (SELECT id FROM reports WHERE ` + where + ` AND id < $17 OFFSET 0) w ORDER BY id DESC LIMIT $18) p
	CROSS JOIN LATERAL ` + reportByIDSQL("p.id") + ` x
	ORDER BY p.id DESC`,
		byDeadline: `SELECT due_at, ` + reportColumns + ` FROM reports WHERE ` + where + `
	AND (due_at, id) > (coalesce($17, '-infinity'::timestamptz), $18) ORDER BY due_at, id LIMIT $19`,
		counts: `SELECT status, count(*), count(*) FILTER (WHERE due_at < now()) FROM reports WHERE ` + where + `
	GROUP BY status`,
	}
}

// Events returns a report's history, oldest first. Returns ENOTFOUND.
func (s *ReportStore) Events(ctx context.Context, id int64) ([]*gridmap.ReportEvent, error) {
	if _, err := s.Report(ctx, id); err != nil {
		return nil, err
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT id, report_id, action, coalesce(from_status, ''), to_status, actor, note, departments, data, at
		FROM report_events WHERE report_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, translate(err, "report events")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*gridmap.ReportEvent, error) {
		var e gridmap.ReportEvent
		var data []byte
		err := r.Scan(&e.ID, &e.ReportID, &e.Action, &e.From, &e.To, &e.Actor, &e.Note, &e.Departments, &data, &e.At)
		e.Data = data
		return &e, err
	})
}

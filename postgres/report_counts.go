package postgres

import (
	"context"
	"reflect"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/jackc/pgx/v5"
)

// ReportCounts counts the reports the filter selects, by status, as
// Reports would list them; the filter's Status, Sort, Limit and Cursor are
// ignored. Returns EINVALID as Reports does.
//
// A scoped caller's counts filtered at most by time and category come from
// the indicators' daily sums (countsFromSums): a district's month is
// tens of thousands of reports, each read for its status (about 0.33 s with ten
// million reports in the table), but a few thousand cells.
func (s *ReportStore) ReportCounts(ctx context.Context, f gridmap.ReportFilter) (*gridmap.ReportCounts, error) {
	return s.reportCounts(ctx, f, true, nil)
}

// reportCounts is ReportCounts reading the daily sums where it can when
// sums is true; it sets *fromSums (when not nil) to whether it read them.
func (s *ReportStore) reportCounts(ctx context.Context, f gridmap.ReportFilter, sums bool, fromSums *bool) (*gridmap.ReportCounts, error) {
	f.Status = ""
	args, err := s.filterArgs(ctx, f)
	if err != nil {
		return nil, err
	}
	// Planned for its own filters (an unnamed statement): a plan cached
	// for any filters cannot use an index for any of them, and reads
	// every report.
	scope := scopeOf(ctx)
	query := reportListSQL[boolIndex(f.Mine)].counts
	if f.Since != nil && scope != nil {
		// A scoped caller's window: its grid's reports by time.
		query = reportListSQL[boolIndex(f.Mine)].countsInScopeWindow
	}
	categories := args[filterCategories]
	args = append([]any{pgx.QueryExecModeDescribeExec}, args...)
	from, to := statsWindow(f.Since, f.Until)
	first, end, whole := statsDays(from, to)
	var out *gridmap.ReportCounts
	read := false
	if scope == nil || !sums || !whole || !countsFromSums(f) {
		out, err = countReports(ctx, s.db.Pool, query, args)
	} else {
		// The levels the grid has had, the clock and the sums, in one
		// snapshot. The clock is the database's, as the other counts'.
		// Serially (the counts of a scope that is no grid too): right
		// after a fold the deltas' table holds pages of rows deleted and
		// not yet vacuumed, and the planner started two workers to read it
		// (170 ms on two cores, against 6 ms without).
		err = s.db.readSerially(ctx, pgx.RepeatableRead, func(tx querier) error {
			var own []string
			var now time.Time
			if err := tx.QueryRow(ctx, `SELECT (`+gridLevelsSQL+`), now()`, scope.Layer, scope.Code).Scan(&own, &now); err != nil {
				return err
			}
			if len(own) == 0 {
				// Not a grid of the layer: no cell is its own.
				out, err = countReports(ctx, tx, query, args)
				return err
			}
			read = true
			out, err = countReports(ctx, tx, reportCountsFromSumsSQL, []any{pgx.QueryExecModeDescribeExec, from, to, first, end,
				scope.Layer, scope.Code, own, categories, now, statsDay(now), dispatch.ClockStopped})
			return err
		})
	}
	if err != nil {
		return nil, translate(err, "report counts")
	}
	if fromSums != nil {
		*fromSums = read
	}
	return out, nil
}

// countsFromSums is true for a filter the daily sums can count: their cells
// are per grid, category, day and status, so that only a window (its
// whole UTC days) and categories can be applied to them. (Any other
// field, a filter added later included, counts the reports.)
func countsFromSums(f gridmap.ReportFilter) bool {
	f.Since, f.Until, f.Category = nil, nil, ""
	f.Status, f.Sort, f.Limit, f.Cursor = "", "", 0, nil // not counts' filters
	return reflect.ValueOf(f).IsZero()
}

// countReports reads rows of status, reports and reports past due into
// counts, for both the counts from the reports and those from the sums. A
// status of "" is closed: the daily sums keep the status of reports not
// yet closed only, and closed is final (dispatch's transitions lead out of
// it by no action).
func countReports(ctx context.Context, db querier, query string, args []any) (*gridmap.ReportCounts, error) {
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := &gridmap.ReportCounts{Counts: map[string]int64{}}
	for rows.Next() {
		var status string
		var n, late int64
		if err := rows.Scan(&status, &n, &late); err != nil {
			return nil, err
		}
		if status == "" {
			status = gridmap.StatusClosed
		}
		if n == 0 {
			continue // moved out of the status since the cells were folded
		}
		dispatch.Count(out, status, n, late)
	}
	return out, rows.Err()
}

// gridLevelsSQL reads the levels grid $2 of layer $1 has had, in any
// version: the levels of its own cells in the daily sums.
const gridLevelsSQL = `SELECT coalesce(array_agg(DISTINCT level), '{}') FROM grid_versions WHERE layer_id = $1 AND code = $2`

// reportCountsFromSumsSQL counts the reports of a caller scoped to grid $6
// of layer $5 reported in [$1, $2), by status, with those past due while
// their clock runs: the cells of the window's whole UTC days ($3 to $4)
// that are the grid's own (at each level $7 it has had) or co-owned
// (scopedOwnCellsSQL, as the indicators' total), and the facts
// of the partial days at its edges. $8 the category codes (NULL: all); $9
// the time the counts are as of; $10 the start of its UTC day; $11
// dispatch.ClockStopped. Of the cells, those of reports not closed and
// due before $10 are past due; those due on $10's day before $9 are
// counted from the facts (report_facts_open_due). A closed report's cells
// have the status "" (countReports).
var reportCountsFromSumsSQL = `WITH src (status, n, late) AS (
	SELECT status, n, ` + cellOverdueSQL("n", "$11", "$10") + ` FROM report_rollup WHERE ` + countsCellsSQL + `
	UNION ALL
	SELECT status, n, ` + cellOverdueSQL("n", "$11", "$10") + ` FROM report_rollup_delta WHERE ` + countsCellsSQL + `
	UNION ALL
	SELECT f.status, 1, (` + factOverdueSQL("$9", "$11") + `)::int FROM report_facts f
	WHERE f.reported_at >= $1 AND f.reported_at < $2 AND ` + factsOutsideDaysSQL("$3", "$4") + ` AND ` + countsFactsSQL + `
	UNION ALL
	SELECT f.status, 0, 1 FROM report_facts f
	WHERE ` + factsDueEarlierTodaySQL("$9", "$10", "$11", "$3", "$4") + ` AND ` + countsFactsSQL + `)
SELECT status, sum(n), sum(late) FROM src GROUP BY status`

// The cells of reportCountsFromSumsSQL, in both tables of cells, and its
// facts, found by time and checked one by one.
var (
	countsCellsSQL = scopedOwnCellsSQL("$5", "$7", "$6") + ` AND ` + cellDaysSQL("$3", "$4", "$8")
	countsFactsSQL = factCategorySQL("$8") + ` AND ` + reportInScopeRowSQL("f", "$5", "$6")
)

package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
)

// The indicators' sums (migration 00021): report_rollup holds per day and
// cell what report_facts hold per report, report_rollup_delta what the
// facts' statements changed since the last fold. A query reads the cells
// of the whole UTC days of its window from both, and the facts of the
// partial days at its edges; the sums are exact, only the median is
// estimated from the bins of handling times (gridmap.MedianHandling).

// rollupLevelAll and rollupLevelDepartment are the levels of the cells
// counting every report and each department (migration 00021).
const (
	rollupLevelAll        = "*"
	rollupLevelDepartment = "#department"
)

// rollupLevelCoOwned is the level of the cells counting, for each code of
// a report's scope_codes its primary chain does not name, the report as
// co-owned there (migration 00027): a scoped caller's total is its grid's
// cells and these.
const rollupLevelCoOwned = "@co-owned"

// binColumns lists "<prefix>0, <prefix>1, ..." through the handling bins,
// each item written by item(k).
func binColumns(item func(k int) string) string { return binList(item, ", ") }

// binList lists item(k) through the handling bins, joined by sep.
func binList(item func(k int) string, sep string) string {
	var b strings.Builder
	for k := range gridmap.HandlingBins {
		if k > 0 {
			b.WriteString(sep)
		}
		b.WriteString(item(k))
	}
	return b.String()
}

// rollupFoldSQL moves the deltas stored in the pages from $1 up to $2
// (tids of their first rows) into the cells in one statement, returning
// how many cells it wrote: a reader's snapshot sees a delta either still
// pending or in its cell, never both, and a delta is deleted in the
// statement that counts it. Only a fold deletes deltas, one fold at a
// time, so that the deltas read are still there to delete.
var rollupFoldSQL = `WITH d AS (DELETE FROM report_rollup_delta WHERE ctid >= $1::tid AND ctid < $2::tid RETURNING *),
f AS (
INSERT INTO report_rollup AS r (layer_id, level, code, category, day, status, due_day, n, registered, closed, closed_on_time,
	registered_closed, resolved, reworked, extended, suspended, ` + binColumns(func(k int) string { return fmt.Sprintf("h%d", k) }) + `)
SELECT layer_id, level, code, category, day, status, due_day, sum(n), sum(registered), sum(closed), sum(closed_on_time),
	sum(registered_closed), sum(resolved), sum(reworked), sum(extended), sum(suspended),
	` + binColumns(func(k int) string { return fmt.Sprintf("coalesce(sum(n) FILTER (WHERE hb = %d), 0)", k) }) + `
FROM d GROUP BY layer_id, level, code, category, day, status, due_day
ON CONFLICT (layer_id, level, day, code, category, status, due_day) DO UPDATE SET n = r.n + EXCLUDED.n,
	registered = r.registered + EXCLUDED.registered, closed = r.closed + EXCLUDED.closed,
	closed_on_time = r.closed_on_time + EXCLUDED.closed_on_time, registered_closed = r.registered_closed + EXCLUDED.registered_closed,
	resolved = r.resolved + EXCLUDED.resolved, reworked = r.reworked + EXCLUDED.reworked, extended = r.extended + EXCLUDED.extended,
	suspended = r.suspended + EXCLUDED.suspended, ` + binColumns(func(k int) string { return fmt.Sprintf("h%d = r.h%d + EXCLUDED.h%d", k, k, k) }) + `
RETURNING 1)
SELECT count(*) FROM f`

// rollupFoldLockID is the advisory lock a fold holds: one fold at a time,
// the others skip (the next tick folds what they would have).
const rollupFoldLockID = 0x67726d_726f6c6c // "grm" "roll"

// rollupDropEmptySQL drops the cells a fold left empty. Not every cell of
// no report: a batch may fold a statement's delta before that of an
// earlier statement (a delta may be stored in space freed before those
// stored earlier), leaving a cell of no report whose other sums are not
// 0 until the earlier delta is folded; dropping it would lose them.
var rollupDropEmptySQL = `DELETE FROM report_rollup WHERE n = 0 AND registered = 0 AND closed = 0 AND closed_on_time = 0
	AND registered_closed = 0 AND resolved = 0 AND reworked = 0 AND extended = 0 AND suspended = 0
	AND ` + binList(func(k int) string { return fmt.Sprintf("h%d = 0", k) }, " AND ")

// rollupFoldPages is how many pages of deltas one transaction of a fold
// moves: a quarter of a million deltas when full. A tick's deltas are a
// few thousand; after a bulk load or a long stop they are millions (7.8
// million took a few minutes here in one statement), which a statement
// timeout would stop and roll back on every tick, so that they never
// fold. In batches each commits what it moved, in seconds.
const rollupFoldPages = 3500

// FoldStats moves the pending deltas of the indicators into their daily
// cells, a range of the table's pages at a time, and drops the cells left
// empty, returning how many cell writes it made (a cell written by two
// batches counts twice). It folds the pages the table had when it began:
// deltas stored later beyond them wait for the next fold, so that a fold
// ends however fast deltas arrive. It stops, returning what it folded,
// when another fold holds the lock (0 when that is so from the start).
// The indicators are exact with or without it; folding keeps them cheap.
func (s *StatsStore) FoldStats(ctx context.Context) (int64, error) {
	return s.foldStats(ctx, rollupFoldPages)
}

// foldStats is FoldStats moving the deltas of at most pages pages a
// transaction. The batches are ranges of pages, not a count of rows
// picked in the order a scan returns them: what each holds does not
// depend on the plan.
func (s *StatsStore) foldStats(ctx context.Context, pages int64) (int64, error) {
	if pages < 1 {
		return 0, fmt.Errorf("a fold moves at least one page of deltas a batch, not %d", pages)
	}
	var end int64 // the table's pages as the fold begins
	if err := s.db.Pool.QueryRow(ctx, `SELECT pg_relation_size('report_rollup_delta') / current_setting('block_size')::int`).Scan(&end); err != nil {
		return 0, translate(err, "folding the indicators' sums")
	}
	var folded int64
	for from := int64(0); from < end; from += pages {
		var locked bool
		var cells int64
		err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
			// A bound above the pool's: a batch on a busy machine. And
			// the batch's pages read as a range of tids, not the whole
			// table scanned for them.
			if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = '5min'; SET LOCAL enable_seqscan = off`); err != nil {
				return err
			}
			if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, int64(rollupFoldLockID)).Scan(&locked); err != nil || !locked {
				return err
			}
			if err := tx.QueryRow(ctx, rollupFoldSQL, fmt.Sprintf("(%d,0)", from), fmt.Sprintf("(%d,0)", from+pages)).Scan(&cells); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, rollupDropEmptySQL)
			return err
		})
		if err != nil {
			return folded, translate(err, "folding the indicators' sums")
		}
		if !locked {
			return folded, nil
		}
		folded += cells
	}
	return folded, nil
}

// FollowStats folds the indicators' deltas every interval until ctx ends.
func (s *StatsStore) FollowStats(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.FoldStats(ctx); err != nil {
			if ctx.Err() != nil || errors.Is(err, context.Canceled) {
				return
			}
			s.db.Logger.Warn("folding the indicators' sums failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// rollupFactCells is report_rollup_cells over the facts f.
const rollupFactCells = `report_rollup_cells(f.layer_id, f.reported_at, f.category, f.chain, f.scope_codes, f.departments, f.status, f.due_at,
	f.closed_at, f.registered, f.closed_on_time, f.resolved, f.reworked, f.extended, f.suspended) c`

// statsFactCellsSQL keeps, of the cells of the facts f, those of the
// caller's figures: every report in its scope ($5, $6) counts in the
// total ('*'), and in a row of level $9 when its primary chain names the
// scope's grid (a report it sees as a co-owner counts in its total, not
// in another grid's row). When the facts read are a day or two's ($14: the
// edges of a window whose whole days come from the cells, or a short
// window), they are found by reported_at and checked one by one; else the
// index on scope_codes narrows them first. (Each statement is planned for
// its own values, so only one of the two is planned.)
var statsFactCellsSQL = `($14 AND ` + reportInScopeRowSQL("f", "$5", "$6") + ` OR NOT $14 AND ` + reportInScopeSQL("f", "$5", "$6") + `)
	AND (c.level = '*' OR c.level = $9 AND ($9 = '` + rollupLevelDepartment + `' OR $6::text IS NULL
	  OR ` + chainNamesSQL("f.chain", "$6") + `))`

// chainNamesSQL is true when the primary chain (report_facts.chain, level
// -> code) names code at any level. (Migration 00027's report_rollup_cells
// says the same for its co-owned cells.)
func chainNamesSQL(chain, code string) string {
	return `EXISTS (SELECT FROM jsonb_each_text(` + chain + `) e WHERE e.value = ` + code + `)`
}

// statsCells is a selection of the daily sums' cells, counted in the group
// (level, code) of the figures.
type statsCells struct{ level, code, where string }

// statsWholeDaysSQL keeps the cells of the window's whole days ($10, $11,
// when $13), of the layer ($3) and the categories ($4).
var statsWholeDaysSQL = `$13 AND ($3 = '' OR layer_id = $3) AND ` + cellDaysSQL("$10", "$11", "$4")

// cellDaysSQL keeps the cells of the UTC days from the one starting at
// first to the one ending at end, of the category codes categories (NULL:
// all).
func cellDaysSQL(first, end, categories string) string {
	return `day >= (` + first + `::timestamptz AT TIME ZONE 'UTC')::date AND day < (` + end + `::timestamptz AT TIME ZONE 'UTC')::date
	  AND (` + categories + `::text[] IS NULL OR category = ANY(` + categories + `))`
}

// cellOverdueSQL is column of a cell when its reports are overdue as of
// the UTC day starting at today: not closed (a closed report's cell has
// an empty status), their clock running (their status not of stopped,
// dispatch.ClockStopped) and due before that day; else 0. Those due on the
// day itself, before now, are the facts of factsDueEarlierTodaySQL.
func cellOverdueSQL(column, stopped, today string) string {
	return `CASE WHEN status <> '' AND status <> ALL(` + stopped + `::text[]) AND due_day < (` + today + `::timestamptz AT TIME ZONE 'UTC')::date
	  THEN ` + column + ` ELSE 0 END`
}

// factsDueEarlierTodaySQL keeps, of the facts f reported in the whole
// days from first to end (those the cells count), the reports not closed,
// their clock running (their status not of stopped), due on the UTC day
// starting at today and before now: overdue now, and not in the cells'
// cellOverdueSQL.
func factsDueEarlierTodaySQL(now, today, stopped, first, end string) string {
	return `f.closed_at IS NULL AND f.due_at >= ` + today + ` AND f.due_at < ` + now + ` AND f.status <> ALL(` + stopped + `::text[])
	  AND f.reported_at >= ` + first + ` AND f.reported_at < ` + end
}

// factsOutsideDaysSQL keeps the facts f not reported in the whole days
// from first to end: those the cells do not count.
func factsOutsideDaysSQL(first, end string) string {
	return `(f.reported_at < ` + first + ` OR f.reported_at >= ` + end + `)`
}

// factCategorySQL keeps the facts f of the category codes categories
// (NULL: all).
func factCategorySQL(categories string) string {
	return `(` + categories + `::text[] IS NULL OR f.category = ANY(` + categories + `))`
}

// factOverdueSQL is true for a fact f overdue at now: due before it, its
// clock running (its status not of stopped).
func factOverdueSQL(now, stopped string) string {
	return `f.due_at < ` + now + ` AND f.status <> ALL(` + stopped + `::text[])`
}

// scopedOwnCellsSQL keeps the cells counting the reports a caller scoped
// to grid code of layer sees: its grid's own (reports whose primary chain
// names it, at each of the levels it has had, gridLevelsSQL) and its
// co-owned cells.
func scopedOwnCellsSQL(layer, levels, code string) string {
	return `layer_id = ` + layer + ` AND (level = ANY(` + levels + `::text[]) OR level = '` + rollupLevelCoOwned + `') AND code = ` + code
}

// statsCellsAll are the cells of an unlimited caller: every report's and
// the groups' of level $9.
var statsCellsAll = []statsCells{{"level", "code", `level IN ('*', $9)`}}

// statsCellsScoped are the cells of a caller scoped to the grid $6: its
// total is what its grid's cells count (reports whose primary chain names
// it, at each level $15 it has had) and its co-owned cells, its rows the
// cells of level $9 of the grids $16 (statsScopedRowsSQL says when they
// are exactly the reports whose primary chain names $6).
var statsCellsScoped = []statsCells{
	{"'*'", "''", scopedOwnCellsSQL("$5", "$15", "$6")},
	{"level", "code", `level = $9 AND code = ANY($16::text[])`},
}

// statsSQLOver computes the figures of the reports of a window, per group and
// category, per group, per category and in total (level '*'), each row
// saying with its last column whether it is a category's (0) or all
// categories' (1), with the counts of handling times per bin, reading
// the cells of its whole days.
//
// $1, $2 reported at or after, before; $3 the layer (” any); $4 the
// category codes (NULL: all); $5, $6 the caller's scope (scopeParams);
// $7 the time the figures are as of; $8 dispatch.ClockStopped; $9 the
// level of the groups (rollupLevelDepartment for departments); $10 the
// start of the first whole UTC day of the window and $11 the end of the
// last, read from the cells when $13 (else every report from the facts);
// $12 the start of $7's UTC day; $14 whether the facts read are few
// (statsFactCellsSQL); then what cells name.
//
// The cells of a report not closed are overdue when its clock runs and it
// was due before $12; those due on $12's day, before $7, are counted from
// the facts (report_facts_open_due).
func statsSQLOver(cells []statsCells) string {
	var src []string
	for _, c := range cells {
		src = append(src, `SELECT `+c.level+` AS level, `+c.code+` AS code, category, n, registered, closed, closed_on_time, registered_closed,
	  resolved, reworked, extended, suspended,
	  `+cellOverdueSQL("n", "$8", "$12")+` AS overdue, `+cellOverdueSQL("registered", "$8", "$12")+` AS registered_overdue,
	  `+binColumns(func(k int) string { return fmt.Sprintf("h%d", k) })+`
	FROM report_rollup WHERE `+statsWholeDaysSQL+` AND `+c.where,
			`SELECT `+c.level+`, `+c.code+`, category, n, registered, closed, closed_on_time, registered_closed, resolved, reworked, extended, suspended,
	  `+cellOverdueSQL("n", "$8", "$12")+`, `+cellOverdueSQL("registered", "$8", "$12")+`,
	  `+binColumns(func(k int) string { return fmt.Sprintf("CASE WHEN hb = %d THEN n ELSE 0 END", k) })+`
	FROM report_rollup_delta WHERE `+statsWholeDaysSQL+` AND `+c.where)
	}
	return `WITH src AS (
	` + strings.Join(src, `
	UNION ALL
	`) + `
	UNION ALL
	-- The facts are summed per cell and handling bin first, so that the
	-- bins' columns are worked out once a group, not once a fact: a
	-- scoped caller's month is tens of thousands of facts, and summing
	-- every bin's column for each of them was most of its time.
	SELECT level, code, category, n, registered, closed, closed_on_time, registered_closed, resolved, reworked, extended, suspended,
	  overdue, registered_overdue, ` + binColumns(func(k int) string { return fmt.Sprintf("CASE WHEN hb = %d THEN n ELSE 0 END", k) }) + `
	FROM (
	  -- Integers, as the cells' columns are (sum would make them bigint,
	  -- and the sums over the union numeric).
	  SELECT c.level, c.code, c.category, c.hb, sum(c.n)::int AS n, sum(c.registered)::int AS registered, sum(c.closed)::int AS closed,
	    sum(c.closed_on_time)::int AS closed_on_time, sum(c.registered_closed)::int AS registered_closed, sum(c.resolved)::int AS resolved,
	    sum(c.reworked)::int AS reworked, sum(c.extended)::int AS extended, sum(c.suspended)::int AS suspended,
	    sum(o.overdue * c.n)::int AS overdue, sum(o.overdue * c.registered)::int AS registered_overdue
	  FROM report_facts f
	  CROSS JOIN LATERAL (SELECT (` + factOverdueSQL("$7", "$8") + `)::int AS overdue) o
	  CROSS JOIN LATERAL ` + rollupFactCells + `
	  WHERE f.reported_at >= $1 AND f.reported_at < $2 AND (NOT $13 OR ` + factsOutsideDaysSQL("$10", "$11") + `)
	    AND ($3 = '' OR f.layer_id = $3) AND ` + factCategorySQL("$4") + ` AND ` + statsFactCellsSQL + `
	  GROUP BY c.level, c.code, c.category, c.hb) x
	UNION ALL
	SELECT c.level, c.code, c.category, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, c.registered,
	  ` + binColumns(func(int) string { return "0" }) + `
	FROM report_facts f CROSS JOIN LATERAL ` + rollupFactCells + `
	WHERE $13 AND ` + factsDueEarlierTodaySQL("$7", "$12", "$8", "$10", "$11") + `
	  AND ($3 = '' OR f.layer_id = $3) AND ` + factCategorySQL("$4") + ` AND ` + statsFactCellsSQL + `)
SELECT level, code, coalesce(category, ''), sum(n), sum(registered), sum(closed), sum(closed_on_time),
  sum(registered_closed + registered_overdue), sum(resolved), sum(reworked), sum(extended), sum(suspended), sum(overdue),
  ` + binColumns(func(k int) string { return fmt.Sprintf("sum(h%d)", k) }) + `, GROUPING(category)
FROM src GROUP BY GROUPING SETS ((level, code, category), (level, code))`
}

// The figures of an unlimited caller, and of a scoped one from the sums.
var (
	statsSQL       = statsSQLOver(statsCellsAll)
	statsScopedSQL = statsSQLOver(statsCellsScoped)
)

// statsScopedRowsSQL reads what says whether the rows of a caller scoped
// to grid $2 of layer $1, grouped by level $3, can come from the daily
// sums: the grids of level $3 ever in $2's subtree (through any version's
// parent, so that deleted grids are among them), the levels $2 has had,
// and whether the subtree is closed: no version of a grid in it but $2
// has a parent outside it, or none.
//
// A report's chain is made of the grids' parents when it was assigned. In
// a closed subtree a chain through any of its grids rises within it up to
// $2, so the cells of its grids of level $3 count exactly the reports
// whose primary chain names $2 (those whose chain stops above $3 count in
// no row, as from the facts). A grid moved into or out of the subtree
// opens it, and the figures come from the facts.
const statsScopedRowsSQL = `WITH RECURSIVE sub (code) AS (
	  SELECT $2::text
	  UNION
	  SELECT g.code FROM grid_versions g JOIN sub ON g.layer_id = $1 AND g.parent_code = sub.code)
	SELECT (SELECT coalesce(array_agg(DISTINCT g.code), '{}') FROM grid_versions g JOIN sub USING (code) WHERE g.layer_id = $1 AND g.level = $3),
	  (` + gridLevelsSQL + `),
	  NOT EXISTS (SELECT FROM grid_versions g JOIN sub USING (code) WHERE g.layer_id = $1 AND g.code <> $2
	    AND (g.parent_code IS NULL OR g.parent_code NOT IN (SELECT code FROM sub)))`

// statsWindow is the window [from, to) with an open end at statsEarliest
// or statsLatest.
func statsWindow(from, to *time.Time) (time.Time, time.Time) {
	f, t := statsEarliest, statsLatest
	if from != nil {
		f = *from
	}
	if to != nil {
		t = *to
	}
	return f, t
}

// statsDay is the start of t's UTC day.
func statsDay(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

// statsDays returns the start of the first whole UTC day in [from, to)
// and the end of the last, and whether there is one.
func statsDays(from, to time.Time) (first, end time.Time, whole bool) {
	first = statsDay(from)
	if first.Before(from) {
		first = first.Add(24 * time.Hour)
	}
	end = statsDay(to)
	return first, end, first.Before(end)
}

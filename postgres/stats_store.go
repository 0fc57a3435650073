package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/jackc/pgx/v5"
)

// StatsStore implements gridmap.StatsService over report_facts (migration
// 00018): one narrow row per report, written by a trigger in the statement
// of every report event, so in the same transaction as intake and each
// move.
//
// Why per-report facts and not daily rollups per (day, grid, category):
// the figures need what rollups cannot add up. A median handling time is
// not a sum; "overdue" depends on the time of the request (a rollup would
// have to be rewritten as deadlines pass); a scoped caller's subtree
// includes reports whose co-owner lies in it (scope_codes), and a window
// may start mid-day. Facts answer all of them exactly and read only the
// window's rows through report_facts_reported, each row about a tenth of a
// report's (no geometry, no assignment JSON, no event history to join).
// The cost is linear in the reports of the window, not in all reports:
// BenchmarkStatsDistrictMonth and ...Year measure it against a GROUP BY
// over reports and their events.
type StatsStore struct{ db *DB }

// NewStatsStore returns a StatsStore over db.
func NewStatsStore(db *DB) *StatsStore { return &StatsStore{db: db} }

var _ gridmap.StatsService = (*StatsStore)(nil)

// Bounds standing for an open window end: before and after any report.
var (
	statsEarliest = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	statsLatest   = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
)

// statsFigures are the aggregates of gridmap.StatsFigures' counts over
// the rows of statsSQL's w (or g), in scanFigures' order; the facts' flags
// are those of migration 00018, and due and overdue follow
// gridmap.StatsFigures' definitions.
const statsFigures = `count(*), count(*) FILTER (WHERE registered), count(*) FILTER (WHERE closed),
	  count(*) FILTER (WHERE closed_on_time), count(*) FILTER (WHERE registered AND (closed OR overdue)),
	  count(*) FILTER (WHERE resolved), count(*) FILTER (WHERE reworked), count(*) FILTER (WHERE extended),
	  count(*) FILTER (WHERE suspended), count(*) FILTER (WHERE overdue),
	  percentile_cont(0.5) WITHIN GROUP (ORDER BY handling)`

// statsSQL computes the figures of the reports of a window: per group and
// category, per group, per category and in total (key NULL), each row
// saying with its last column whether it is a category's (0) or all
// categories' (1).
// $1, $2 reported at or after, before; $3 the layer (” any); $4 the
// category codes (NULL: all); $5, $6 the caller's scope (scopeParams);
// $7 the time the figures are as of; $8 dispatch.ClockStopped; $9 the
// level grouping by grid (its code in the primary chain), with $10 false;
// $10 true groups by department instead.
var statsSQL = `WITH w AS MATERIALIZED (
	  SELECT f.category, f.chain, f.departments, f.registered, f.resolved, f.reworked, f.extended, f.suspended,
	    f.closed_at IS NOT NULL AS closed, f.closed_on_time,
	    f.due_at < $7 AND f.status <> ALL($8::text[]) AS overdue,
	    extract(epoch FROM f.closed_at - f.reported_at) AS handling
	  FROM report_facts f
	  WHERE f.reported_at >= $1 AND f.reported_at < $2 AND ($3 = '' OR f.layer_id = $3)
	    AND ($4::text[] IS NULL OR f.category = ANY($4)) AND ` + reportInScopeSQL("f", "$5", "$6") + `),
	g AS (
	  SELECT k.key, w.* FROM w CROSS JOIN LATERAL unnest(CASE WHEN $10 THEN w.departments ELSE ARRAY[w.chain->>$9::text] END) k (key)
	  WHERE k.key IS NOT NULL
	    -- A scoped caller's rows are its subtree's grids: a report it sees
	    -- as a co-owner counts in its total, not in another grid's row.
	    AND ($10 OR $6::text IS NULL OR EXISTS (SELECT 1 FROM jsonb_each_text(w.chain) e WHERE e.value = $6)))
	SELECT key, coalesce(category, ''), ` + statsFigures + `, GROUPING(category) FROM g GROUP BY GROUPING SETS ((key, category), (key))
	UNION ALL
	SELECT NULL, coalesce(category, ''), ` + statsFigures + `, GROUPING(category) FROM w GROUP BY GROUPING SETS ((category), ())`

// Names of the groups: grids of the layer ($1) or departments.
const (
	statsGridNamesSQL       = `SELECT code, name FROM grids WHERE layer_id = $1 AND code = ANY($2)`
	statsDepartmentNamesSQL = `SELECT code, name FROM departments WHERE code = ANY($1)`
)

// Stats computes the indicators of q as of now for the caller in ctx.
// Returns EINVALID for an unknown group, layer or category, a level not of
// the layer, From after To.
func (s *StatsStore) Stats(ctx context.Context, q gridmap.StatsQuery) (*gridmap.Stats, error) {
	return s.StatsAt(ctx, q, time.Now())
}

// StatsAt is Stats as of time now (overdue and due figures).
func (s *StatsStore) StatsAt(ctx context.Context, q gridmap.StatsQuery, now time.Time) (*gridmap.Stats, error) {
	if err := gridmap.CheckStatsQuery(q); err != nil {
		return nil, err
	}
	out := &gridmap.Stats{Layer: q.Layer, Group: q.Group, From: q.From, To: q.To, AsOf: now, Rows: []gridmap.StatsRow{}}
	if q.Layer != "" {
		l, err := scanLayer(s.db.Pool.QueryRow(ctx, `SELECT `+layerColumns+` FROM layers WHERE id = $1`, q.Layer))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, gridmap.Errorf(gridmap.EINVALID, "layer %q does not exist (GET /v1/layers lists them)", q.Layer)
		} else if err != nil {
			return nil, translate(err, "layer "+q.Layer)
		}
		if q.Group != gridmap.StatsByDepartment {
			if out.Level, err = gridmap.StatsLevel(l, q.Group, q.Level); err != nil {
				return nil, err
			}
		}
	}
	categories, err := s.db.categorySubtree(ctx, q.Category)
	if err != nil {
		return nil, err
	}
	from, to := statsEarliest, statsLatest
	if q.From != nil {
		from = *q.From
	}
	if q.To != nil {
		to = *q.To
	}
	scopeLayer, scopeCode := scopeParams(ctx)
	rows, err := s.db.Pool.Query(ctx, statsSQL, from, to, q.Layer, categories, scopeLayer, scopeCode, now, dispatch.ClockStopped,
		out.Level, q.Group == gridmap.StatsByDepartment)
	if err != nil {
		return nil, translate(err, "stats")
	}
	defer rows.Close()
	byKey := map[string]*gridmap.StatsRow{}
	var keys []string
	for rows.Next() {
		var key *string
		var category string
		var f gridmap.StatsFigures
		var all int
		if err := rows.Scan(&key, &category, &f.Received, &f.Registered, &f.Closed, &f.ClosedOnTime, &f.Due, &f.Resolved,
			&f.Reworked, &f.Extended, &f.Suspended, &f.Overdue, &f.MedianHandlingS, &all); err != nil {
			return nil, translate(err, "stats")
		}
		f.SetRates()
		row := &out.Total
		if key != nil {
			if row = byKey[*key]; row == nil {
				row = &gridmap.StatsRow{Key: *key, ByCategory: []gridmap.CategoryStats{}}
				byKey[*key] = row
				keys = append(keys, *key)
			}
		}
		if all == 1 {
			row.StatsFigures = f
		} else {
			row.ByCategory = append(row.ByCategory, gridmap.CategoryStats{Category: category, StatsFigures: f})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err, "stats")
	}
	if out.Total.ByCategory == nil {
		out.Total.ByCategory = []gridmap.CategoryStats{}
	}
	names, err := s.groupNames(ctx, q, keys)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		r := byKey[k]
		r.Name = names[k]
		out.Rows = append(out.Rows, *r)
	}
	gridmap.RankStats(out.Rows)
	return out, nil
}

// groupNames reads the names of the groups with keys.
func (s *StatsStore) groupNames(ctx context.Context, q gridmap.StatsQuery, keys []string) (map[string]string, error) {
	names := map[string]string{}
	if len(keys) == 0 {
		return names, nil
	}
	var rows pgx.Rows
	var err error
	if q.Group == gridmap.StatsByDepartment {
		rows, err = s.db.Pool.Query(ctx, statsDepartmentNamesSQL, keys)
	} else {
		rows, err = s.db.Pool.Query(ctx, statsGridNamesSQL, q.Layer, keys)
	}
	if err != nil {
		return nil, translate(err, "stats group names")
	}
	defer rows.Close()
	for rows.Next() {
		var code, name string
		if err := rows.Scan(&code, &name); err != nil {
			return nil, translate(err, "stats group names")
		}
		names[code] = name
	}
	return names, translate(rows.Err(), "stats group names")
}

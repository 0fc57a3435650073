package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/jackc/pgx/v5"
)

// StatsStore implements gridmap.StatsService over report_facts (migration
// 00018: one narrow row per report, written by a trigger in the statement
// of every report event, so in the same transaction as intake and each
// move) and their daily sums (migration 00021, stats_rollup.go).
//
// The facts alone cost time linear in the reports of the window: a year of
// a busy district is a million rows, seconds of work. The sums are per UTC
// day and cell (a grid of any level, a department, every report; a
// category; for reports not closed their status and due day, so that
// "overdue now" is a sum of cells due before today plus the few facts due
// earlier today). A window reads the cells of its whole days and the facts
// of the partial days at its edges. A scoped caller's figures include the
// reports it only co-owns: its total is its grid's cells and its co-owned
// cells (migration 00027), its rows its subtree's cells when they are
// exact (statsScopedRowsSQL), else everything comes from the facts. The
// median handling time is interpolated from counts in bins
// (gridmap.MedianHandling), both ways, so that both give the same figures.
// BenchmarkStatsDistrictMonth, ...Year and ...OneDistrictMonth measure it
// against a GROUP BY over reports and their events.
type StatsStore struct{ db *DB }

// NewStatsStore returns a StatsStore over db.
func NewStatsStore(db *DB) *StatsStore { return &StatsStore{db: db} }

var _ gridmap.StatsService = (*StatsStore)(nil)

// Bounds standing for an open window end: before and after any report.
var (
	statsEarliest = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	statsLatest   = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
)

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
	return s.statsAt(ctx, q, now, true, nil)
}

// statsAt is StatsAt reading the daily sums where it can when cells is
// true, else the facts alone; it sets *fromSums (when not nil) to whether
// it read the sums for the window's whole days (its edges always come
// from the facts).
func (s *StatsStore) statsAt(ctx context.Context, q gridmap.StatsQuery, now time.Time, cells bool, fromSums *bool) (*gridmap.Stats, error) {
	if err := gridmap.CheckStatsQuery(q); err != nil {
		return nil, err
	}
	out := &gridmap.Stats{Layer: q.Layer, Group: q.Group, From: q.From, To: q.To, AsOf: now, Rows: []gridmap.StatsRow{}}
	var layerLevels []string
	if q.Layer != "" {
		l, err := scanLayer(s.db.Pool.QueryRow(ctx, `SELECT `+layerColumns+` FROM layers WHERE id = $1`, q.Layer))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, gridmap.Errorf(gridmap.EINVALID, "layer %q does not exist (GET /v1/layers lists them)", q.Layer)
		} else if err != nil {
			return nil, translate(err, "layer "+q.Layer)
		}
		layerLevels = l.Levels
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
	from, to := statsWindow(q.From, q.To)
	scopeLayer, scopeCode := scopeParams(ctx)
	level := out.Level
	if q.Group == gridmap.StatsByDepartment {
		level = rollupLevelDepartment
	}
	first, end, whole := statsDays(from, to)
	cells = cells && whole
	today := statsDay(now)
	// The facts read are few when the cells hold the window's whole days,
	// or the window is short.
	fewFacts := func(cells bool) bool { return cells || to.Sub(from) <= 48*time.Hour }
	args := []any{from, to, q.Layer, categories, scopeLayer, scopeCode, now, dispatch.ClockStopped, level, first, end, today, cells, fewFacts(cells)}
	const cellsArg, fewFactsArg = 12, 13 // $13, $14
	byKey := map[string]*gridmap.StatsRow{}
	var keys []string
	readCells := false
	query := func(db querier, sql string, args []any) error {
		// Planned for each call's own values (an unnamed statement): a
		// plan cached for any window reads the facts of every day, not
		// only the edges'.
		rows, err := db.Query(ctx, sql, append([]any{pgx.QueryExecModeDescribeExec}, args...)...)
		if err != nil {
			return err
		}
		keys, err = scanStatsRows(rows, &out.Total, byKey)
		readCells = args[cellsArg].(bool)
		return err
	}
	if scopeLayer == nil {
		err = query(s.db.Pool, statsSQL, args)
	} else {
		// A scoped caller's total is its grid's cells and its co-owned
		// cells; its rows are its subtree's cells when they hold exactly
		// the reports whose primary chain names its grid, else the
		// figures come from the facts. One snapshot for both reads.
		err = pgx.BeginTxFunc(ctx, s.db.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
			var grids, own []string
			sums := false
			if cells && q.Layer == *scopeLayer && q.Group != gridmap.StatsByDepartment {
				var err error
				if grids, own, sums, err = scopedRows(ctx, tx, q.Layer, *scopeCode, level, layerLevels); err != nil {
					return err
				}
			}
			if !sums {
				args[cellsArg], args[fewFactsArg] = false, fewFacts(false)
				return query(tx, statsSQL, args)
			}
			return query(tx, statsScopedSQL, append(args, own, grids))
		})
	}
	if err != nil {
		return nil, translate(err, "stats")
	}
	if fromSums != nil {
		*fromSums = readCells
	}
	byCategory := func(a, b gridmap.CategoryStats) int { return strings.Compare(a.Category, b.Category) }
	slices.SortFunc(out.Total.ByCategory, byCategory)
	for _, r := range byKey {
		slices.SortFunc(r.ByCategory, byCategory)
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

// scopedRows returns the grids of level of a caller scoped to grid code of
// a layer with levels, and whether the figures can take its total and
// those grids' rows from the daily sums (statsScopedRowsSQL), with the
// levels code has had, at which its own cells lie.
func scopedRows(ctx context.Context, db querier, layer, code, level string, levels []string) (grids, own []string, exact bool, err error) {
	var closed bool
	if err := db.QueryRow(ctx, statsScopedRowsSQL, layer, code, level).Scan(&grids, &own, &closed); err != nil {
		return nil, nil, false, err
	}
	// A level asked above the caller's has rows the subtree's cells do not
	// hold; a level the layer no longer has cannot be placed.
	at := slices.Index(levels, level)
	exact = closed && len(own) > 0 && at >= 0
	for _, l := range own {
		if i := slices.Index(levels, l); i < 0 || i > at {
			exact = false
		}
	}
	return grids, own, exact, nil
}

// scanStatsRows reads the rows of statsSQL into total and the groups'
// rows by key, returning the keys in the order first read.
func scanStatsRows(rows pgx.Rows, total *gridmap.StatsRow, byKey map[string]*gridmap.StatsRow) ([]string, error) {
	defer rows.Close()
	var keys []string
	bins := make([]int64, gridmap.HandlingBins)
	dest := make([]any, 0, 16+gridmap.HandlingBins)
	for rows.Next() {
		var level, key, category string
		var f gridmap.StatsFigures
		var all int
		dest = append(dest[:0], &level, &key, &category, &f.Received, &f.Registered, &f.Closed, &f.ClosedOnTime, &f.Due, &f.Resolved,
			&f.Reworked, &f.Extended, &f.Suspended, &f.Overdue)
		for k := range bins {
			dest = append(dest, &bins[k])
		}
		if err := rows.Scan(append(dest, &all)...); err != nil {
			return nil, err
		}
		f.MedianHandlingS = gridmap.MedianHandling(bins)
		f.SetRates()
		row := total
		if level != rollupLevelAll {
			if row = byKey[key]; row == nil {
				row = &gridmap.StatsRow{Key: key, ByCategory: []gridmap.CategoryStats{}}
				byKey[key] = row
				keys = append(keys, key)
			}
		}
		if all == 1 {
			row.StatsFigures = f
		} else {
			row.ByCategory = append(row.ByCategory, gridmap.CategoryStats{Category: category, StatsFigures: f})
		}
	}
	return keys, rows.Err()
}

package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
)

// IndicatorStore implements gridmap.IndicatorService over report_facts
// (migration 00018), like StatsStore, whose figures its threshold flags
// judge; the rules are in indicator_rules (migration 00020).
type IndicatorStore struct {
	db    *DB
	stats *StatsStore
	// loc is the zone trend buckets are cut in: the deployment's, as
	// deadlines are counted (serve --time-zone).
	loc *time.Location
}

// NewIndicatorStore returns an IndicatorStore over db, judging the figures
// of stats and cutting trends into days, weeks and months of loc.
func NewIndicatorStore(db *DB, stats *StatsStore, loc *time.Location) *IndicatorStore {
	return &IndicatorStore{db: db, stats: stats, loc: loc}
}

var _ gridmap.IndicatorService = (*IndicatorStore)(nil)

// IndicatorRules reads the rules: those stored over the defaults.
func (s *IndicatorStore) IndicatorRules(ctx context.Context) (gridmap.IndicatorRules, error) {
	return readIndicatorRules(ctx, s.db.Pool)
}

// readIndicatorRules reads the stored rules through q.
func readIndicatorRules(ctx context.Context, q querier) (gridmap.IndicatorRules, error) {
	r := gridmap.DefaultIndicatorRules()
	var stored []byte
	err := q.QueryRow(ctx, `SELECT rules FROM indicator_rules WHERE one`).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, nil
	} else if err != nil {
		return r, translate(err, "reading the indicator rules")
	}
	if err := json.Unmarshal(stored, &r); err != nil {
		return r, translate(err, "reading the indicator rules")
	}
	return r, nil
}

// PutIndicatorRules replaces the rules and returns those before. Returns
// EINVALID, storing nothing, for rules that fail gridmap.IndicatorRules.Check.
func (s *IndicatorStore) PutIndicatorRules(ctx context.Context, r gridmap.IndicatorRules) (gridmap.IndicatorRules, error) {
	if err := r.Check(); err != nil {
		return gridmap.IndicatorRules{}, err
	}
	body, err := json.Marshal(r)
	if err != nil {
		return gridmap.IndicatorRules{}, err
	}
	var before gridmap.IndicatorRules
	err = pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		// One change at a time, the first included (FOR UPDATE locks
		// nothing while there is no row): each audit entry's "before" is
		// what the change replaced.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('gridmap indicator rules', 0))`); err != nil {
			return err
		}
		var err error
		if before, err = readIndicatorRules(ctx, tx); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO indicator_rules (one, rules) VALUES (true, $1)
			ON CONFLICT (one) DO UPDATE SET rules = EXCLUDED.rules, updated_at = now()`, body)
		return err
	})
	if err != nil {
		return gridmap.IndicatorRules{}, translate(err, "storing the indicator rules")
	}
	return before, nil
}

// surgeSQL counts the reports of each grid and category week by week:
// $1, $2 reported at or after, before (the baseline's first week to the
// end of the last); $3 the layer; $4 the category codes (NULL: all); $5,
// $6 the caller's scope (scopeParams); $7 the level whose grids count; $8
// the week starts, oldest first (width_bucket numbers them from 1, the
// last week len($8)); $9 the fewest reports of the last week worth
// returning (gridmap.SurgeOf judges the rest). Weeks without reports have
// no row. It reads the window's facts through report_facts_reported, once.
var surgeSQL = `WITH c AS (
	  SELECT f.chain->>$7::text AS key, f.category, width_bucket(f.reported_at, $8::timestamptz[]) AS week, count(*) AS n
	  FROM report_facts f
	  WHERE f.reported_at >= $1 AND f.reported_at < $2 AND f.layer_id = $3
	    AND ($4::text[] IS NULL OR f.category = ANY($4)) AND ` + reportInScopeSQL("f", "$5", "$6") + `
	    -- A scoped caller's grids are those of its subtree, as in statsSQL.
	    AND ($6::text IS NULL OR ` + chainNamesSQL("f.chain", "$6") + `)
	  GROUP BY 1, 2, 3)
	SELECT key, category, array_agg(week ORDER BY week), array_agg(n ORDER BY week)
	FROM c WHERE key IS NOT NULL
	GROUP BY key, category
	HAVING coalesce(sum(n) FILTER (WHERE week = cardinality($8::timestamptz[])), 0) >= $9
	ORDER BY key, category`

// indicatorGridNamesSQL are the names of grids $2 of layer $1, now.
const indicatorGridNamesSQL = `SELECT code, name FROM grids WHERE layer_id = $1 AND code = ANY($2)`

// Flags raises the flags of q as of now (see FlagsAt).
func (s *IndicatorStore) Flags(ctx context.Context, q gridmap.FlagsQuery) (*gridmap.Flags, error) {
	return s.FlagsAt(ctx, q, time.Now())
}

// FlagsAt raises the flags of q as of now: threshold flags from the grids'
// figures over the window (StatsStore.StatsAt with group=grid), surge
// flags from the weekly counts before its end (surgeSQL, judged by
// gridmap.SurgeOf). Returns EINVALID for a missing or unknown layer, a
// level not of it, an unknown category, From after To.
func (s *IndicatorStore) FlagsAt(ctx context.Context, q gridmap.FlagsQuery, now time.Time) (*gridmap.Flags, error) {
	if q.Layer == "" {
		return nil, gridmap.Errorf(gridmap.EINVALID, "layer is required: the comprehensive layer whose grids are flagged (GET /v1/layers)")
	}
	from, to, err := gridmap.FlagsWindow(q.From, q.To, now)
	if err != nil {
		return nil, err
	}
	rules, err := s.IndicatorRules(ctx)
	if err != nil {
		return nil, err
	}
	st, err := s.stats.StatsAt(ctx, gridmap.StatsQuery{Layer: q.Layer, Group: gridmap.StatsByGrid, Level: q.Level,
		From: &from, To: &to, Category: q.Category}, now)
	if err != nil {
		return nil, err
	}
	out := &gridmap.Flags{Layer: q.Layer, Level: st.Level, From: from, To: to, AsOf: now, Rules: rules,
		Flags: gridmap.ThresholdFlags(st.Rows, rules)}
	surges, err := s.surges(ctx, q, st.Level, to, rules)
	if err != nil {
		return nil, err
	}
	out.Flags = append(out.Flags, surges...)
	if out.Flags == nil {
		out.Flags = []gridmap.Flag{}
	}
	gridmap.SortFlags(out.Flags)
	return out, nil
}

// surges are the surge flags of the grids of level in the weeks before to.
func (s *IndicatorStore) surges(ctx context.Context, q gridmap.FlagsQuery, level string, to time.Time,
	rules gridmap.IndicatorRules) ([]gridmap.Flag, error) {
	categories, err := s.db.categorySubtree(ctx, q.Category)
	if err != nil {
		return nil, err
	}
	// Weeks of exactly 7 × 24 hours back from to, oldest first.
	starts := make([]time.Time, rules.SurgeWeeks+1)
	for i := range starts {
		starts[i] = to.Add(-time.Duration(len(starts)-i) * 7 * 24 * time.Hour)
	}
	scopeLayer, scopeCode := scopeParams(ctx)
	rows, err := s.db.Pool.Query(ctx, surgeSQL, starts[0], to, q.Layer, categories, scopeLayer, scopeCode, level, starts,
		rules.SurgeMinCount)
	if err != nil {
		return nil, translate(err, "surge flags")
	}
	var flags []gridmap.Flag
	var keys []string
	for rows.Next() {
		var key, category string
		var weeks []int32
		var counts []int64
		if err := rows.Scan(&key, &category, &weeks, &counts); err != nil {
			rows.Close()
			return nil, translate(err, "surge flags")
		}
		dense := make([]int64, len(starts))
		for i, w := range weeks {
			dense[w-1] = counts[i]
		}
		if f, ok := gridmap.SurgeOf(dense, rules); ok {
			f.Key, f.Category = key, category
			f.Reason = "category " + category + ": " + f.Reason
			flags = append(flags, f)
			keys = append(keys, key)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, translate(err, "surge flags")
	}
	names, err := gridNames(ctx, s.db, q.Layer, keys)
	if err != nil {
		return nil, err
	}
	for i := range flags {
		flags[i].Name = names[flags[i].Key]
	}
	return flags, nil
}

// gridNames reads the current names of grids codes of layer.
func gridNames(ctx context.Context, db *DB, layer string, codes []string) (map[string]string, error) {
	names := map[string]string{}
	if len(codes) == 0 {
		return names, nil
	}
	rows, err := db.Pool.Query(ctx, indicatorGridNamesSQL, layer, codes)
	if err != nil {
		return nil, translate(err, "grid names")
	}
	defer rows.Close()
	for rows.Next() {
		var code, name string
		if err := rows.Scan(&code, &name); err != nil {
			return nil, translate(err, "grid names")
		}
		names[code] = name
	}
	return names, translate(rows.Err(), "grid names")
}

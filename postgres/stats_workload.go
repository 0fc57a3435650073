package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/jackc/pgx/v5"
)

// workloadSQL lists every current grid of level $2 of layer $1 with its
// residents (attributes households and population, as JSON) and the
// reports of the window in it: received, and open (status not in $8,
// dispatch.DoneStatuses). A scoped caller ($3 scope layer, $4 scope code,
// NULLs for everyone) gets the grids inside its scope grid up to $5 m2 of
// drawing noise, as exports do (exportSQL), and counts only the reports in
// its scope. $6, $7 reported at or after, before. The reports are read
// once, through report_facts_reported, and grouped by their grid.
var workloadSQL = `WITH g AS (
	  SELECT g.code, g.name, g.attributes->'households' AS households, g.attributes->'population' AS population
	  FROM grids g
	  WHERE g.layer_id = $1 AND g.level = $2
	    AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM grid_versions s
	         WHERE s.layer_id = $3 AND s.code = $4 AND s.valid_to IS NULL AND s.geom && g.geom
	           AND (ST_CoveredBy(g.geom, s.geom) OR ST_Area(ST_Difference(g.geom, s.geom)::geography) <= $5)))),
	r AS (
	  SELECT f.chain->>$2::text AS key, count(*) AS received, count(*) FILTER (WHERE f.status <> ALL($8::text[])) AS open
	  FROM report_facts f
	  WHERE f.reported_at >= $6 AND f.reported_at < $7 AND f.layer_id = $1 AND ` + reportInScopeSQL("f", "$3", "$4") + `
	  GROUP BY 1)
	SELECT g.code, g.name, g.households, g.population, coalesce(r.received, 0), coalesce(r.open, 0)
	FROM g LEFT JOIN r ON r.key = g.code
	ORDER BY g.code`

// Workload compares the grids of q's level as of now (see WorkloadAt).
func (s *IndicatorStore) Workload(ctx context.Context, q gridmap.WorkloadQuery) (*gridmap.Workload, error) {
	return s.WorkloadAt(ctx, q, time.Now())
}

// WorkloadAt compares the grids of q's level, open reports counted as of
// now: every current grid of the level in the caller's scope, those
// without reports with 0. Returns EINVALID for a missing or unknown layer,
// a level not of it, From after To.
func (s *IndicatorStore) WorkloadAt(ctx context.Context, q gridmap.WorkloadQuery, now time.Time) (*gridmap.Workload, error) {
	from, to, err := gridmap.FlagsWindow(q.From, q.To, now)
	if err != nil {
		return nil, err
	}
	level, err := s.gridLevel(ctx, q.Layer, q.Level)
	if err != nil {
		return nil, err
	}
	out := &gridmap.Workload{Layer: q.Layer, Level: level, From: from, To: to, Rows: []gridmap.WorkloadRow{}}
	scopeLayer, scopeCode := scopeParams(ctx)
	rows, err := s.db.Pool.Query(ctx, workloadSQL, q.Layer, level, scopeLayer, scopeCode, gridmap.ToleranceAreaM2, from, to,
		dispatch.DoneStatuses)
	if err != nil {
		return nil, translate(err, "workload")
	}
	defer rows.Close()
	for rows.Next() {
		var r gridmap.WorkloadRow
		var households, population any
		if err := rows.Scan(&r.Key, &r.Name, &households, &population, &r.Received, &r.Open); err != nil {
			return nil, translate(err, "workload")
		}
		r.Households, r.Population = gridmap.AttributeNumber(households), gridmap.AttributeNumber(population)
		out.Rows = append(out.Rows, r)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err, "workload")
	}
	out.SetLoads()
	return out, nil
}

// gridLevel is the level of layer whose grids are compared: level, or by
// default the layer's finest grid-tier level (gridmap.StatsLevel). Returns
// EINVALID for a missing or unknown layer, a level not of it.
func (s *IndicatorStore) gridLevel(ctx context.Context, layer, level string) (string, error) {
	if layer == "" {
		return "", gridmap.Errorf(gridmap.EINVALID, "layer is required: the comprehensive layer whose grids are compared (GET /v1/layers)")
	}
	l, err := scanLayer(s.db.Pool.QueryRow(ctx, `SELECT `+layerColumns+` FROM layers WHERE id = $1`, layer))
	if errors.Is(err, pgx.ErrNoRows) {
		return "", gridmap.Errorf(gridmap.EINVALID, "layer %q does not exist (GET /v1/layers lists them)", layer)
	} else if err != nil {
		return "", translate(err, "layer "+layer)
	}
	return gridmap.StatsLevel(l, gridmap.StatsByGrid, level)
}

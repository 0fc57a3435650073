package postgres

import (
	"context"
	"errors"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
)

// Jurisdiction: the caller in the request's context (gridmap.CallerFrom)
// may carry a scope, a grid of a comprehensive layer; a scoped caller reads
// and acts only inside that grid's subtree. A context without a caller is
// the service itself and is not limited.

// scopeOf is the scope of ctx's caller, nil when unlimited.
func scopeOf(ctx context.Context) *gridmap.Scope { return gridmap.CallerFrom(ctx).ScopeOf() }

// scopeParams are the two parameters of reportInScopeSQL: NULLs for an
// unlimited caller.
func scopeParams(ctx context.Context) (layer, code *string) {
	if s := scopeOf(ctx); s != nil {
		return &s.Layer, &s.Code
	}
	return nil, nil
}

// reportInScopeSQL is true for a report (columns of alias r) in the scope
// whose layer and code are parameters layer and code (NULL: every report):
// its scope_codes (gridmap.ReportScopeCodes, stored with its assignment)
// name the scope's grid.
func reportInScopeSQL(r, layer, code string) string {
	return `(` + layer + `::text IS NULL OR (` + r + `.layer_id = ` + layer + ` AND ` + r + `.scope_codes @> ARRAY[` + code + `::text]))`
}

// reportInScopeRowSQL is reportInScopeSQL written so that the planner
// checks it on each row another index found, never through the index on
// scope_codes: for a few hours of reports, where a district's entries in
// that index are a year's.
func reportInScopeRowSQL(r, layer, code string) string {
	return `(` + layer + `::text IS NULL OR (` + r + `.layer_id = ` + layer + ` AND ` + code + `::text = ANY(` + r + `.scope_codes)))`
}

// checkReportInScope returns EFORBIDDEN when ctx's caller is scoped and the
// report with assignment a lies outside the scope.
func checkReportInScope(ctx context.Context, id int64, a *gridmap.Assignment) error {
	s := scopeOf(ctx)
	if s.HoldsReport(a) {
		return nil
	}
	return gridmap.Errorf(gridmap.EFORBIDDEN, "report %d lies outside %s's area (%s %s): none of its grids is in it",
		id, gridmap.CallerFrom(ctx).Name, s.Layer, s.Code)
}

// outsideScopeSQL finds the first grid of a changeset's working table that
// reaches outside the scope grid ($1 layer, $2 code): written, moved or
// deleted, every grid's old and new outline must lie inside the scope's
// grid (up to $3 m2 of drawing noise along its edge), and the scope's grid
// itself belongs to the level above. A scope grid that no longer exists
// holds nothing.
var outsideScopeSQL = scopeGridSQL + `
	SELECT w.code FROM cs_work w LEFT JOIN s ON true
	WHERE s.geom IS NULL OR ($4 = $1 AND w.code = $2) OR ` + reachesOutside("w.geom", "$3") + `
	   OR (w.old_geom IS NOT NULL AND ` + reachesOutside("w.old_geom", "$3") + `)
	ORDER BY w.code LIMIT 1`

// scopeGridSQL reads the outline of the scope grid ($1 layer, $2 code) as s.
const scopeGridSQL = `WITH s AS (SELECT geom FROM grid_versions WHERE layer_id = $1 AND code = $2 AND valid_to IS NULL)`

// reachesOutside is true when geometry g reaches outside the scope grid
// s.geom by more than tolerance (a parameter, m2).
func reachesOutside(g, tolerance string) string {
	return `NOT (ST_CoveredBy(` + g + `, s.geom) OR ST_Area(ST_Difference(` + g + `, s.geom)::geography) <= ` + tolerance + `)`
}

// checkScope returns EFORBIDDEN naming operation i when, after it,
// the changeset touches a grid outside the scope of ctx's caller.
func (c *changeset) checkScope(ctx context.Context, i int, op *gridmap.Operation) error {
	s := scopeOf(ctx)
	if s == nil {
		return nil
	}
	var code string
	err := c.tx.QueryRow(ctx, outsideScopeSQL, s.Layer, s.Code, gridmap.ToleranceAreaM2, c.layer.ID).Scan(&code)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	} else if err != nil {
		return err
	}
	return gridmap.Errorf(gridmap.EFORBIDDEN, "operation %d (%s) touches grid %s, outside %s's area (%s %s); the changeset was not applied",
		i, op.Op, code, gridmap.CallerFrom(ctx).Name, s.Layer, s.Code)
}

// gridOutsideScopeSQL is true when grid $4 of layer $3 lies outside the
// scope grid ($1 layer, $2 code), by the rule of outsideScopeSQL.
var gridOutsideScopeSQL = scopeGridSQL + `
	SELECT s.geom IS NULL OR ($3 = $1 AND g.code = $2) OR ` + reachesOutside("g.geom", "$5") + `
	FROM grid_versions g LEFT JOIN s ON true WHERE g.layer_id = $3 AND g.code = $4 AND g.valid_to IS NULL`

// checkGridInScope returns EFORBIDDEN when ctx's caller is scoped and the
// current grid lies outside its scope (a grid that does not exist passes:
// the caller's own check answers ENOTFOUND).
func checkGridInScope(ctx context.Context, q querier, layer, code string) error {
	s := scopeOf(ctx)
	if s == nil {
		return nil
	}
	var outside bool
	err := q.QueryRow(ctx, gridOutsideScopeSQL, s.Layer, s.Code, layer, code, gridmap.ToleranceAreaM2).Scan(&outside)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && !outside {
		return nil
	} else if err != nil {
		return err
	}
	return gridmap.Errorf(gridmap.EFORBIDDEN, "grid %s of layer %s lies outside %s's area (%s %s)",
		code, layer, gridmap.CallerFrom(ctx).Name, s.Layer, s.Code)
}

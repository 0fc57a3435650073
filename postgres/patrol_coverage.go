package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
)

// patrolGridsSQL opens the coverage and idle queries: members, the workers
// of each grid of level $2 of layer $1 (the accounts whose person grid is
// it or lies below it), and grids, those grids inside the caller's scope
// ($3 layer, $4 code; NULL: every grid), with srid, the UTM zone of the
// grid's centre for measuring in metres.
const patrolGridsSQL = `WITH RECURSIVE up AS (
	  SELECT a.id AS account_id, g.code, g.parent_code, g.level, 0 AS depth
	  FROM accounts a JOIN grid_versions g ON g.layer_id = a.person_layer AND g.code = a.person_grid AND g.valid_to IS NULL
	  WHERE a.person_layer = $1 AND a.disabled_at IS NULL
	  UNION ALL
	  SELECT up.account_id, g.code, g.parent_code, g.level, up.depth + 1
	  FROM up JOIN grid_versions g ON g.layer_id = $1 AND g.code = up.parent_code AND g.valid_to IS NULL
	  WHERE up.depth < 32
	), scoped AS (
	  SELECT code, 0 AS depth FROM grid_versions WHERE layer_id = $3 AND code = $4 AND valid_to IS NULL
	  UNION ALL
	  SELECT g.code, s.depth + 1 FROM scoped s JOIN grid_versions g ON g.layer_id = $3 AND g.parent_code = s.code AND g.valid_to IS NULL
	  WHERE s.depth < 32
	), members AS (
	  SELECT DISTINCT account_id, code FROM up WHERE level = $2
	), grids AS (
	  SELECT g.code, g.name, g.geom,
	    CASE WHEN ST_Y(c.pt) < 0 THEN 32700 ELSE 32600 END + least(60, floor((ST_X(c.pt) + 180) / 6)::int + 1) AS srid
	  FROM grid_versions g CROSS JOIN LATERAL (SELECT ST_PointOnSurface(g.geom) AS pt) c
	  WHERE g.layer_id = $1 AND g.level = $2 AND g.valid_to IS NULL
	    AND ($3::text IS NULL OR ($3 = $1 AND g.code IN (SELECT code FROM scoped)))
	)`

// patrolCoverageSQL measures, per grid, the share of its area within $7
// metres of the day's ($5 to $6) tracks of its workers: each worker's
// points in time order make lines, broken where two points lie more than
// $8 seconds apart (a lone point stays a point); the lines of a grid's
// workers are buffered in the grid's UTM zone, cut by the grid, and
// measured on the spheroid. A buffer in the UTM zone is what geography
// ST_Buffer does for an area this small (_ST_BestSRID), so the figure
// matches it. Only the grids whose hash falls in part $10 of $9 are
// measured, so that parts can run side by side.
//
// A whole day's walk inside one grid crosses itself thousands of times,
// and GEOS buffers such a line slowly; cut into chunks of
// coverageChunk points (each sharing its first point with the chunk
// before, so no segment is lost) the buffers are small and their union
// is the same area, measured twice as fast.
var patrolCoverageSQL = patrolGridsSQL + `, part AS (
	  SELECT * FROM grids WHERE (hashtext(code) & 2147483647) % $9 = $10
	), pts AS (
	  SELECT p.account_id, p.t, p.location,
	    CASE WHEN p.t - lag(p.t) OVER w > $8 * interval '1 second' THEN 1 ELSE 0 END AS brk,
	    row_number() OVER w - 1 AS i
	  FROM track_points p
	  WHERE p.account_id IN (SELECT m.account_id FROM members m JOIN part USING (code)) AND p.t >= $5 AND p.t < $6
	  WINDOW w AS (PARTITION BY p.account_id ORDER BY p.t)
	), marked AS (
	  SELECT account_id, t, location, i, sum(brk) OVER (PARTITION BY account_id ORDER BY t) AS stretch FROM pts
	), chunked AS (
	  SELECT account_id, stretch, i / ` + coverageChunk + ` AS chunk, t, location FROM marked
	  UNION ALL
	  SELECT account_id, stretch, i / ` + coverageChunk + ` - 1, t, location FROM marked WHERE i % ` + coverageChunk + ` = 0 AND i > 0
	), lines AS (
	  SELECT account_id, CASE WHEN count(*) > 1 AND ST_Length(ST_MakeLine(location ORDER BY t)) > 0
	    THEN ST_MakeLine(location ORDER BY t) ELSE (array_agg(location))[1] END AS geom
	  FROM chunked GROUP BY account_id, stretch, chunk
	), per_worker AS (
	  SELECT account_id, count(*) AS n FROM pts GROUP BY account_id
	), counted AS (
	  SELECT m.code, count(*) AS workers, coalesce(sum(w.n), 0)::bigint AS n
	  FROM members m JOIN part USING (code) LEFT JOIN per_worker w ON w.account_id = m.account_id
	  GROUP BY m.code
	), covered AS (
	  SELECT g.code, ST_Union(ST_Buffer(ST_Transform(l.geom, g.srid), $7)) AS area
	  FROM part g JOIN members m ON m.code = g.code JOIN lines l ON l.account_id = m.account_id
	  GROUP BY g.code
	)
	SELECT g.code, g.name, coalesce(n.workers, 0), coalesce(n.n, 0),
	  coalesce(ST_Area(ST_Transform(ST_Intersection(ST_Transform(g.geom, g.srid), c.area), 4326)::geography), 0),
	  ST_Area(g.geom::geography)
	FROM part g LEFT JOIN covered c ON c.code = g.code LEFT JOIN counted n ON n.code = g.code`

// coverageChunk is how many points a line of patrolCoverageSQL holds at
// most (64 measured fastest on the demo district, 16 to 128 tried).
const coverageChunk = "64"

// coverageParts is how many parts of a coverage run side by side, each on
// a connection of its own.
const coverageParts = 4

// Coverage measures a day's patrol coverage per grid of a level (see
// gridmap.PatrolService), in coverageParts parts side by side. Returns
// ENOTFOUND for an unknown layer, EINVALID for a bad level or day.
func (s *PatrolStore) Coverage(ctx context.Context, layer, level, day string) (*gridmap.PatrolCoverage, error) {
	level, err := s.patrolLevel(ctx, layer, level)
	if err != nil {
		return nil, err
	}
	from, to, err := gridmap.ParseDay(day, s.tz)
	if err != nil {
		return nil, err
	}
	scopeLayer, scopeCode := scopeParams(ctx)
	parts := make([][]gridmap.CoverageRow, coverageParts)
	g, gctx := errgroup.WithContext(ctx)
	for i := range parts {
		g.Go(func() error {
			// Planned for its parameters each time (QueryExecModeExec): a
			// generic plan, which a prepared statement turns to after five
			// runs, joined the day's points in a nested loop and ran for
			// minutes.
			rows, err := s.db.Pool.Query(gctx, patrolCoverageSQL, pgx.QueryExecModeExec, layer, level, scopeLayer, scopeCode, from, to,
				float64(gridmap.PatrolReachM), gridmap.TrackGap.Seconds(), coverageParts, i)
			if err != nil {
				return err
			}
			parts[i], err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (gridmap.CoverageRow, error) {
				var r gridmap.CoverageRow
				err := row.Scan(&r.Code, &r.Name, &r.Workers, &r.Points, &r.CoveredM2, &r.AreaM2)
				if r.AreaM2 > 0 {
					r.Coverage = min(1, r.CoveredM2/r.AreaM2)
				}
				return r, err
			})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, translate(err, "patrol coverage")
	}
	out := &gridmap.PatrolCoverage{Layer: layer, Level: level, Day: day, Rows: slices.Concat(parts...)}
	if out.Rows == nil {
		out.Rows = []gridmap.CoverageRow{}
	}
	slices.SortFunc(out.Rows, func(a, b gridmap.CoverageRow) int { return strings.Compare(a.Code, b.Code) })
	return out, nil
}

// idleSQL lists the grids whose workers recorded no point inside them
// since $5, with the last time one did (NULL: never, as far as points are
// kept): for each worker the newest point inside the grid, read backwards
// in time through track_points_account_t.
var idleSQL = patrolGridsSQL + `, last AS (
	  SELECT g.code, g.name, (SELECT count(*) FROM members m WHERE m.code = g.code) AS workers,
	    (SELECT max(l.t) FROM members m CROSS JOIN LATERAL (
	       SELECT p.t FROM track_points p WHERE p.account_id = m.account_id AND ST_Intersects(g.geom, p.location)
	       ORDER BY p.t DESC LIMIT 1) l
	     WHERE m.code = g.code) AS last_patrol
	  FROM grids g)
	SELECT code, name, workers, last_patrol FROM last WHERE last_patrol IS NULL OR last_patrol < $5 ORDER BY code`

// maxIdleDays bounds the days of an idle query.
const maxIdleDays = 366

// Idle lists the grids of a level nobody patrolled for days days (see
// gridmap.PatrolService). Returns ENOTFOUND for an unknown layer, EINVALID
// for a bad level or a days out of range.
func (s *PatrolStore) Idle(ctx context.Context, layer, level string, days int) (*gridmap.IdleGrids, error) {
	if days < 1 || days > maxIdleDays {
		return nil, gridmap.Errorf(gridmap.EINVALID, "days %d must be a whole number of days from 1 to %d", days, maxIdleDays)
	}
	level, err := s.patrolLevel(ctx, layer, level)
	if err != nil {
		return nil, err
	}
	scopeLayer, scopeCode := scopeParams(ctx)
	rows, err := s.db.Pool.Query(ctx, idleSQL, pgx.QueryExecModeExec, layer, level, scopeLayer, scopeCode, time.Now().AddDate(0, 0, -days))
	if err != nil {
		return nil, translate(err, "idle grids")
	}
	out := &gridmap.IdleGrids{Layer: layer, Level: level, Days: days}
	out.Rows, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (gridmap.IdleGrid, error) {
		var r gridmap.IdleGrid
		return r, row.Scan(&r.Code, &r.Name, &r.Workers, &r.LastPatrol)
	})
	if out.Rows == nil {
		out.Rows = []gridmap.IdleGrid{}
	}
	return out, translate(err, "idle grids")
}

// patrolLevel is the level of layer whose grids are measured: level, or by
// default the layer's finest grid-tier level (gridmap.StatsLevel). Returns
// EINVALID for a missing layer or a level not of it, ENOTFOUND for an
// unknown layer.
func (s *PatrolStore) patrolLevel(ctx context.Context, layer, level string) (string, error) {
	if layer == "" {
		return "", gridmap.Errorf(gridmap.EINVALID, "layer is required: the comprehensive layer whose grids are measured (GET /v1/layers)")
	}
	l, err := scanLayer(s.db.Pool.QueryRow(ctx, `SELECT `+layerColumns+` FROM layers WHERE id = $1`, layer))
	if errors.Is(err, pgx.ErrNoRows) {
		return "", gridmap.Errorf(gridmap.ENOTFOUND, "layer %q does not exist (GET /v1/layers lists them)", layer)
	} else if err != nil {
		return "", translate(err, fmt.Sprintf("layer %s", layer))
	}
	return gridmap.StatsLevel(l, gridmap.StatsByGrid, level)
}

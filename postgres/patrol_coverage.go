package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"
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
// measured, so that parts can run side by side. Each grid's row ends with
// its workers' accounts and their points of the day.
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
	  SELECT m.code, count(*) AS workers, coalesce(sum(w.n), 0)::bigint AS n,
	    array_agg(m.account_id ORDER BY m.account_id) AS accounts, array_agg(coalesce(w.n, 0) ORDER BY m.account_id) AS counts
	  FROM members m JOIN part USING (code) LEFT JOIN per_worker w ON w.account_id = m.account_id
	  GROUP BY m.code
	), covered AS (
	  SELECT g.code, ST_Union(ST_Buffer(ST_Transform(l.geom, g.srid), $7)) AS area
	  FROM part g JOIN members m ON m.code = g.code JOIN lines l ON l.account_id = m.account_id
	  GROUP BY g.code
	)
	SELECT g.code, g.name, coalesce(n.workers, 0), coalesce(n.n, 0),
	  coalesce(ST_Area(ST_Transform(ST_Intersection(ST_Transform(g.geom, g.srid), c.area), 4326)::geography), 0),
	  ST_Area(g.geom::geography), coalesce(n.accounts, '{}'), coalesce(n.counts, '{}')
	FROM part g LEFT JOIN covered c ON c.code = g.code LEFT JOIN counted n ON n.code = g.code`

// coverageChunk is how many points a line of patrolCoverageSQL holds at
// most (64 measured fastest on the demo district, 16 to 128 tried).
const coverageChunk = "64"

// coverageParts is how many parts of a coverage run side by side at most,
// each on a connection of its own.
const coverageParts = 4

// Coverage answers a day's patrol coverage per grid of a level (see
// gridmap.PatrolService): a day over that is kept at the level, from the
// kept rows (patrol_days.go); one not kept yet, of the layer's default
// level, measured and kept first; today, or another level, measured now,
// once for all who ask at the same time, and then kept for
// liveCoverageTTL. Returns ENOTFOUND for an unknown layer, EINVALID for a
// bad level or day.
func (s *PatrolStore) Coverage(ctx context.Context, layer, level, day string) (*gridmap.PatrolCoverage, error) {
	kept, err := s.patrolLevel(ctx, layer, "")
	if err != nil {
		return nil, err
	}
	if level, err = s.patrolLevel(ctx, layer, level); err != nil {
		return nil, err
	}
	from, to, err := gridmap.ParseDay(day, s.tz)
	if err != nil {
		return nil, err
	}
	out := &gridmap.PatrolCoverage{Layer: layer, Level: level, Day: day}
	d, now := localDay(from, s.tz), time.Now()
	ok := false
	if !to.After(now) {
		if out.Rows, ok, err = s.storedCoverage(ctx, layer, level, d); err == nil && !ok && level == kept && s.measurable(d, now) {
			if err = s.measureDay(ctx, layer, level, d); err == nil {
				out.Rows, ok, err = s.storedCoverage(ctx, layer, level, d)
			}
		}
	}
	if err == nil && !ok {
		out.Rows, err = s.liveCoverage(ctx, layer, level, from, to)
	}
	if err != nil {
		return nil, err
	}
	if out.Rows == nil {
		out.Rows = []gridmap.CoverageRow{}
	}
	return out, nil
}

// liveCoverageTTL is how long a coverage measured now answers the same
// question again: today's figure moves slowly, and measuring it costs
// coverageParts connections for seconds.
const liveCoverageTTL = time.Minute

// liveCoverage measures [from, to) of layer's level in the caller's scope,
// sharing one measurement among callers asking the same at once and
// keeping it for liveCoverageTTL.
func (s *PatrolStore) liveCoverage(ctx context.Context, layer, level string, from, to time.Time) ([]gridmap.CoverageRow, error) {
	scopeLayer, scopeCode := scopeParams(ctx)
	key := fmt.Sprintf("%q %q %d %d", layer, level, from.Unix(), to.Unix())
	if scopeLayer != nil {
		key += fmt.Sprintf(" %q %q", *scopeLayer, *scopeCode)
	}
	s.live.mu.Lock()
	if c, ok := s.live.rows[key]; ok && time.Now().Before(c.until) {
		s.live.mu.Unlock()
		return c.rows, nil
	}
	s.live.mu.Unlock()
	// The measurement runs to its end when the caller that started it
	// leaves: others may be waiting on it, and it is kept.
	ch := s.live.group.DoChan(key, func() (any, error) {
		grids, err := s.measureCoverage(context.WithoutCancel(ctx), layer, level, from, to, scopeLayer, scopeCode)
		if err != nil {
			return nil, err
		}
		rows := make([]gridmap.CoverageRow, len(grids))
		for i, g := range grids {
			rows[i] = g.CoverageRow
		}
		s.live.mu.Lock()
		defer s.live.mu.Unlock()
		now := time.Now()
		for k, c := range s.live.rows {
			if now.After(c.until) {
				delete(s.live.rows, k)
			}
		}
		s.live.rows[key] = liveRows{rows: rows, until: now.Add(liveCoverageTTL)}
		return rows, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.([]gridmap.CoverageRow), nil
	case <-ctx.Done():
		return nil, translate(ctx.Err(), "patrol coverage")
	}
}

// liveCache holds the coverage measured now by key (liveCoverage).
type liveCache struct {
	group singleflight.Group
	mu    sync.Mutex
	rows  map[string]liveRows
}

type liveRows struct {
	rows  []gridmap.CoverageRow
	until time.Time
}

// measuredGrid is a grid's coverage as measured, with its workers'
// accounts and each one's points of the day.
type measuredGrid struct {
	gridmap.CoverageRow
	accounts      []int64
	accountPoints []int
}

// measureCoverage measures the coverage of [from, to) per grid of layer's
// level in the scope (nil: every grid), in up to coverageParts parts side
// by side, ordered by code.
func (s *PatrolStore) measureCoverage(ctx context.Context, layer, level string, from, to time.Time, scopeLayer, scopeCode *string) ([]measuredGrid, error) {
	// One measurement at a time, on at most half the pool: the
	// rest of the service keeps its connections.
	select {
	case s.measuring <- struct{}{}:
		defer func() { <-s.measuring }()
	case <-ctx.Done():
		return nil, translate(ctx.Err(), "patrol coverage")
	}
	n := min(coverageParts, max(1, int(s.db.Pool.Config().MaxConns)/2))
	parts := make([][]measuredGrid, n)
	g, gctx := errgroup.WithContext(ctx)
	for i := range parts {
		g.Go(func() error {
			// Planned for its parameters each time (QueryExecModeExec): a
			// generic plan, which a prepared statement turns to after five
			// runs, joined the day's points in a nested loop and ran for
			// minutes.
			rows, err := s.db.Pool.Query(gctx, patrolCoverageSQL, pgx.QueryExecModeExec, layer, level, scopeLayer, scopeCode, from, to,
				float64(gridmap.PatrolReachM), gridmap.TrackGap.Seconds(), n, i)
			if err != nil {
				return err
			}
			parts[i], err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (measuredGrid, error) {
				var r measuredGrid
				err := row.Scan(&r.Code, &r.Name, &r.Workers, &r.Points, &r.CoveredM2, &r.AreaM2, &r.accounts, &r.accountPoints)
				r.Coverage = gridmap.CoverageShare(r.CoveredM2, r.AreaM2)
				return r, err
			})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, translate(err, "patrol coverage")
	}
	out := slices.Concat(parts...)
	slices.SortFunc(out, func(a, b measuredGrid) int { return strings.Compare(a.Code, b.Code) })
	return out, nil
}

// idleSQL lists the grids of layer $1 (of the caller's scope: $3 layer,
// $4 code; NULL every grid) kept for level $2 in time zone $5 whose
// coverage was 0 on each of the kept days from $6 to $7, with the workers
// they had on the last of them and the last kept day their coverage was
// above 0 (NULL: none).
var idleSQL = `WITH ` + subtreeSQL("$3", "$4") + `,
	last AS (
	  SELECT DISTINCT ON (d.code) d.code, d.name, d.workers FROM patrol_days d JOIN patrol_day_runs r USING (layer_id, tz, day)
	  WHERE d.layer_id = $1 AND r.level = $2 AND d.tz = $5 AND d.day BETWEEN $6 AND $7
	    AND ($3::text IS NULL OR ($3 = $1 AND d.code IN (SELECT code FROM sub)))
	  ORDER BY d.code, d.day DESC)
	SELECT l.code, l.name, l.workers,
	  (SELECT max(p.day) FROM patrol_days p WHERE p.layer_id = $1 AND p.tz = $5 AND p.code = l.code AND p.covered_m2 > 0)
	FROM last l
	WHERE NOT EXISTS (SELECT 1 FROM patrol_days p WHERE p.layer_id = $1 AND p.tz = $5 AND p.code = l.code
	                  AND p.day BETWEEN $6 AND $7 AND p.covered_m2 > 0)
	ORDER BY l.code`

// maxIdleDays bounds the days of an idle query.
const maxIdleDays = 366

// Idle lists the grids of the layer's default patrol level whose
// coverage was 0 on each of the last days days that are kept (see
// gridmap.PatrolService), measuring first a few of those not kept (the
// rest meanwhile). Returns ENOTFOUND for an unknown layer, EINVALID for a
// level other than that one or a days out of range.
func (s *PatrolStore) Idle(ctx context.Context, layer, level string, days int) (*gridmap.IdleGrids, error) {
	if days < 1 || days > maxIdleDays {
		return nil, gridmap.Errorf(gridmap.EINVALID, "days %d must be a whole number of days from 1 to %d", days, maxIdleDays)
	}
	level, err := s.keptLevel(ctx, layer, level)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	today, _ := dayBounds(localDay(now, s.tz), s.tz)
	window := gridmap.WholeDaysOver(today.AddDate(0, 0, -days), today, now, s.tz)
	if _, err := s.measureDays(ctx, layer, level, window, maxDaysMeasuredPerRequest, false); err != nil {
		return nil, err
	}
	kept, err := s.keptAt(ctx, layer, level, window)
	if err != nil {
		return nil, err
	}
	scopeLayer, scopeCode := scopeParams(ctx)
	first, last := window[0], window[len(window)-1]
	rows, err := s.db.Pool.Query(ctx, idleSQL, layer, level, scopeLayer, scopeCode, s.tz.String(), first, last)
	if err != nil {
		return nil, translate(err, "idle grids")
	}
	out := &gridmap.IdleGrids{Layer: layer, Level: level, Days: days, From: first.Format(time.DateOnly), To: last.Format(time.DateOnly),
		MeasuredDays: len(kept)}
	out.Rows, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (gridmap.IdleGrid, error) {
		var r gridmap.IdleGrid
		var last *time.Time
		err := row.Scan(&r.Code, &r.Name, &r.Workers, &last)
		if last != nil {
			d := last.Format(time.DateOnly)
			r.LastPatrol = &d
		}
		return r, err
	})
	if out.Rows == nil {
		out.Rows = []gridmap.IdleGrid{}
	}
	return out, translate(err, "idle grids")
}

// patrolLevel is the level of layer whose grids are measured: level, or by
// default gridmap.PatrolLevel of the levels the layer's enabled workers
// are linked at. Returns EINVALID for a missing layer or a level not of
// it, ENOTFOUND for an unknown layer.
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
	if level != "" {
		return gridmap.StatsLevel(l, gridmap.StatsByGrid, level)
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT DISTINCT g.level FROM accounts a
		JOIN grid_versions g ON g.layer_id = a.person_layer AND g.code = a.person_grid AND g.valid_to IS NULL
		WHERE a.person_layer = $1 AND a.disabled_at IS NULL`, layer)
	if err != nil {
		return "", translate(err, "patrol level")
	}
	linked, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", translate(err, "patrol level")
	}
	return gridmap.PatrolLevel(l, linked), nil
}

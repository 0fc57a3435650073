package postgres

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
)

// workerInScopeSQL is true for a worker position (alias p) the scope whose
// layer and code are parameters layer and code (NULL: every worker) holds:
// gridmap.Scope.HoldsWorker over the chain codes stored with it.
func workerInScopeSQL(p, layer, code string) string {
	return `(` + layer + `::text IS NULL OR (` + p + `.layer_id = ` + layer + ` AND ` + p + `.scope_codes @> ARRAY[` + code + `::text]))`
}

// checkMaySeeWorkers returns EFORBIDDEN for a caller whose role may not see
// where workers are.
func checkMaySeeWorkers(ctx context.Context) error {
	if c := gridmap.CallerFrom(ctx); !c.MaySeeWorkers() {
		return gridmap.Errorf(gridmap.EFORBIDDEN, "where workers are is for dispatchers, editors and admins; %s is a %s", c.Name, c.Role)
	}
	return nil
}

// workerColumns are a worker's position as gridmap.WorkerPosition holds
// it, from worker_positions p and accounts a.
const workerColumns = `a.username, a.display_name, p.device, p.t, ST_X(p.location), ST_Y(p.location), p.accuracy_m::float8,
	coalesce(a.person_grid, ''), coalesce(a.person_layer, '')`

func workerDest(w *gridmap.WorkerPosition) []any {
	return []any{&w.Worker, &w.Name, &w.Device, &w.T, &w.Lon, &w.Lat, &w.AccuracyM, &w.Grid, &w.Layer}
}

// workersSQL lists the positions since $1 of workers of layer $2 ("" any)
// in the scope $3, $4, newest first.
var workersSQL = `SELECT ` + workerColumns + ` FROM worker_positions p JOIN accounts a ON a.id = p.account_id
	WHERE p.t > $1 AND ($2 = '' OR p.layer_id = $2) AND ` + workerInScopeSQL("p", "$3", "$4") + ` AND a.disabled_at IS NULL
	ORDER BY p.t DESC, a.username`

// Workers lists the on-duty workers the caller may see. Returns
// EFORBIDDEN for a caller that may not see workers.
func (s *PatrolStore) Workers(ctx context.Context, layer string) ([]gridmap.WorkerPosition, error) {
	if err := checkMaySeeWorkers(ctx); err != nil {
		return nil, err
	}
	scopeLayer, scopeCode := scopeParams(ctx)
	rows, err := s.db.Pool.Query(ctx, workersSQL, time.Now().Add(-gridmap.OnDutyWithin), layer, scopeLayer, scopeCode)
	if err != nil {
		return nil, translate(err, "workers")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (gridmap.WorkerPosition, error) {
		var w gridmap.WorkerPosition
		return w, row.Scan(workerDest(&w)...)
	})
	if out == nil {
		out = []gridmap.WorkerPosition{}
	}
	return out, translate(err, "workers")
}

// Track returns a worker's points of a day in the store's time zone.
// Returns ENOTFOUND for an unknown worker or one the caller may not see,
// EINVALID for a bad day, EFORBIDDEN for a caller that may not see workers.
func (s *PatrolStore) Track(ctx context.Context, worker, day string) ([]gridmap.TrackPoint, error) {
	if err := checkMaySeeWorkers(ctx); err != nil {
		return nil, err
	}
	from, to, err := gridmap.ParseDay(day, s.tz)
	if err != nil {
		return nil, err
	}
	id, err := s.visibleWorker(ctx, worker)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT t, ST_X(location), ST_Y(location), accuracy_m FROM track_points
		WHERE account_id = $1 AND t >= $2 AND t < $3 ORDER BY t`, id, from, to)
	if err != nil {
		return nil, translate(err, "track of "+worker)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (gridmap.TrackPoint, error) {
		var p gridmap.TrackPoint
		var acc *float32
		err := row.Scan(&p.T, &p.Lon, &p.Lat, &acc)
		if acc != nil {
			v := float64(*acc)
			p.AccuracyM = &v
		}
		return p, err
	})
	if out == nil {
		out = []gridmap.TrackPoint{}
	}
	return out, translate(err, "track of "+worker)
}

// visibleWorker returns the account id of worker when the caller's scope
// holds it (by its person link now). Returns ENOTFOUND otherwise.
func (s *PatrolStore) visibleWorker(ctx context.Context, worker string) (int64, error) {
	var id int64
	var layer, grid *string
	err := s.db.Pool.QueryRow(ctx, `SELECT id, person_layer, person_grid FROM accounts WHERE username = $1`, worker).Scan(&id, &layer, &grid)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, errNoWorker(worker)
	} else if err != nil {
		return 0, translate(err, "worker "+worker)
	}
	scope := scopeOf(ctx)
	if scope == nil {
		return id, nil
	}
	var wg *gridmap.WorkerGrid
	if layer != nil {
		codes, err := s.chain(ctx, *layer, *grid)
		if err != nil {
			return 0, err
		}
		wg = &gridmap.WorkerGrid{Layer: *layer, Codes: codes}
	}
	if !scope.HoldsWorker(wg) {
		return 0, errNoWorker(worker)
	}
	return id, nil
}

// nearbyWorkersSQL lists the workers on duty since $3 linked to grids $2
// (or grids below them) of report $1's layer (run as onReport(...,
// report)), in the scope $4, $5,
// nearest first, with the geodesic distance from the report's location to
// their last position, the first $6. worker_positions_scope finds them
// among the thousands on duty.
var nearbyWorkersSQL = `SELECT ` + workerColumns + `, coalesce(a.person_name, ''),
	  ST_Distance(p.location::geography, r.location::geography) AS d
	FROM {report} r, worker_positions p JOIN accounts a ON a.id = p.account_id
	WHERE r.id = $1 AND p.scope_codes && $2::text[] AND p.layer_id = r.layer_id AND p.t > $3
	  AND ` + workerInScopeSQL("p", "$4", "$5") + ` AND a.disabled_at IS NULL
	ORDER BY d, a.username
	LIMIT $6`

// neighboursSQL lists current grid $2 of layer $1, the grids above it whose
// level is of the grid tier (a micro-grid's grid: its workers walk it), and
// the grids of each one's level touching it (a shared edge or corner).
const neighboursSQL = `WITH RECURSIVE up AS (
	  SELECT code, parent_code, level, geom, 0 AS depth FROM grid_versions WHERE layer_id = $1 AND code = $2 AND valid_to IS NULL
	  UNION ALL
	  SELECT g.code, g.parent_code, g.level, g.geom, up.depth + 1
	  FROM up JOIN grid_versions g ON g.layer_id = $1 AND g.code = up.parent_code AND g.valid_to IS NULL
	  WHERE up.depth < 32),
	h AS (SELECT up.level, up.geom FROM up JOIN layers l ON l.id = $1 WHERE up.depth = 0 OR l.tiers ->> up.level = 'grid')
	SELECT coalesce(array_agg(DISTINCT n.code), '{}')
	FROM h JOIN grid_versions n ON n.layer_id = $1 AND n.level = h.level AND n.valid_to IS NULL
	  AND n.geom && h.geom AND ST_Intersects(n.geom, h.geom)`

// neighbours returns grid code of layer, its grid-tier grids above and the
// grids touching each at its level (neighboursSQL), from the cache while fresh (chainTTL: a boundary edit reaches
// the nearest-worker answers that much later).
func (s *PatrolStore) neighbours(ctx context.Context, layer, code string) ([]string, error) {
	return s.cached(ctx, &s.neighbourCache, neighboursSQL, layer, code)
}

// NearbyWorkers lists the limit nearest on-duty workers of a report's grid
// and its neighbours, nearest first; a scoped caller sees only those of
// its scope. Returns ENOTFOUND, EFORBIDDEN for a report outside the
// caller's scope or a caller that may not see workers, EINVALID for a
// limit outside 1 to gridmap.MaxNearbyWorkers.
func (s *PatrolStore) NearbyWorkers(ctx context.Context, report int64, limit int) ([]gridmap.NearbyWorker, error) {
	if err := checkMaySeeWorkers(ctx); err != nil {
		return nil, err
	}
	if limit < 1 || limit > gridmap.MaxNearbyWorkers {
		return nil, gridmap.Errorf(gridmap.EINVALID, "limit %d must be from 1 to %d", limit, gridmap.MaxNearbyWorkers)
	}
	var layer, primary *string
	var a gridmap.Assignment
	err := s.db.Pool.QueryRow(ctx, onReport(`SELECT layer_id, primary_code, assignment FROM {report} WHERE id = $1`, report), report).Scan(&layer, &primary, &a)
	if noReport(err, report) {
		return nil, gridmap.Errorf(gridmap.ENOTFOUND, "report %d does not exist", report)
	} else if err != nil {
		return nil, translate(err, "report "+strconv.FormatInt(report, 10))
	}
	if err := checkReportInScope(ctx, report, &a); err != nil {
		return nil, err
	}
	out := []gridmap.NearbyWorker{}
	if layer == nil || primary == nil {
		return out, nil // outside every grid: no grid's workers
	}
	codes, err := s.neighbours(ctx, *layer, *primary)
	if err != nil {
		return nil, err
	}
	scopeLayer, scopeCode := scopeParams(ctx)
	rows, err := s.db.Pool.Query(ctx, onReport(nearbyWorkersSQL, report), report, codes, time.Now().Add(-gridmap.OnDutyWithin), scopeLayer, scopeCode, limit)
	if err != nil {
		return nil, translate(err, "nearby workers")
	}
	defer rows.Close()
	for rows.Next() {
		var w gridmap.NearbyWorker
		if err := rows.Scan(append(workerDest(&w.WorkerPosition), &w.Person, &w.DistanceM)...); err != nil {
			return nil, translate(err, "nearby workers")
		}
		w.SeenAt = w.T
		out = append(out, w)
	}
	return out, translate(rows.Err(), "nearby workers")
}

package postgres

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
)

// WorkerChannel is the NOTIFY channel announcing new worker positions for
// the live feed (no payload).
const WorkerChannel = "gridmap_workers"

// PatrolStore keeps workers' tracks and positions (gridmap.PatrolService):
// intake and retention here, the reads in patrol_store.go.
//
// Track points live in one partition of track_points per UTC day
// (track_partitions.go): the retention job makes them ahead and drops
// whole days past the retention; intake makes sure the partitions of a
// batch's days exist before writing, and remembers which do.
type PatrolStore struct {
	db        *DB
	tz        *time.Location
	retention time.Duration

	// days holds the start (Unix seconds) of every UTC day whose partition
	// is known to exist.
	days sync.Map
	// chainCache holds the chain codes of workers' person grids
	// (gridmap.WorkerGrid), read on every batch; neighbourCache each
	// report grid's neighbours, read on every nearest-worker question.
	chainCache, neighbourCache codeCache
	// live holds coverage measured now (patrol_coverage.go).
	live liveCache
	// measuring holds a token while a coverage is measured: one at a
	// time.
	measuring chan struct{}
}

// codeCache keeps lists of grid codes by layer and code for chainTTL.
type codeCache struct {
	mu    sync.Mutex
	codes map[[2]string]cachedCodes
}

type cachedCodes struct {
	codes []string
	until time.Time
}

// chainTTL is how long a grid's chain or neighbours are taken from the
// cache: a grid moved to another parent reaches the workers' scope, and a
// redrawn boundary the nearest workers, that much later.
const chainTTL = time.Minute

// NewPatrolStore returns a PatrolStore over db counting days in tz and
// keeping points for retention (gridmap.DefaultTrackRetention when 0).
func NewPatrolStore(db *DB, tz *time.Location, retention time.Duration) *PatrolStore {
	if retention <= 0 {
		retention = gridmap.DefaultTrackRetention
	}
	return &PatrolStore{db: db, tz: tz, retention: retention, live: liveCache{rows: map[string]liveRows{}},
		measuring: make(chan struct{}, 1)}
}

// trackIntakeSQL stores a batch's points ($3-$6 as arrays: times, longitudes,
// latitudes, accuracies) of account $1 and device $2, each once, and moves
// the worker's position to the batch's last point when that is newer, in
// which case it writes a worker event (data from $9 username, $10 display
// name, $11 person grid, $7 its layer; $8 its chain codes) and notifies the
// feed. The points stored of days ($14, each point's in the service's
// time zone $12) that are over or end within dayOverGrace ($13) append a
// change of that day of the worker's layer ($7), for measuring it again
// (patrol_days.go). Returns how many points were stored and whether the
// position moved.
const trackIntakeSQL = `WITH pts AS (
	  SELECT * FROM unnest($3::timestamptz[], $4::float8[], $5::float8[], $6::float8[], $14::date[]) AS p (t, lon, lat, acc, day)
	), ins AS (
	  INSERT INTO track_points (account_id, device, t, location, accuracy_m)
	  SELECT $1, $2, t, ST_SetSRID(ST_MakePoint(lon, lat), 4326), acc FROM pts
	  ON CONFLICT DO NOTHING
	  RETURNING t
	), last AS (
	  SELECT t, lon, lat, acc FROM pts ORDER BY t DESC LIMIT 1
	), pos AS (
	  INSERT INTO worker_positions AS w (account_id, device, t, location, accuracy_m, layer_id, scope_codes)
	  SELECT $1, $2, t, ST_SetSRID(ST_MakePoint(lon, lat), 4326), acc, $7, $8 FROM last
	  ON CONFLICT (account_id) DO UPDATE SET device = EXCLUDED.device, t = EXCLUDED.t, location = EXCLUDED.location,
	    accuracy_m = EXCLUDED.accuracy_m, layer_id = EXCLUDED.layer_id, scope_codes = EXCLUDED.scope_codes
	  WHERE w.t < EXCLUDED.t
	  RETURNING t, ST_X(location) AS lon, ST_Y(location) AS lat, accuracy_m
	), ev AS (
	  INSERT INTO worker_events (account_id, layer_id, scope_codes, data)
	  SELECT $1, $7, $8, json_build_object('worker', $9::text, 'name', $10::text, 't', pos.t, 'lon', pos.lon, 'lat', pos.lat,
	    'accuracy_m', pos.accuracy_m, 'grid', $11::text, 'layer', coalesce($7, ''))
	  FROM pos
	  RETURNING id
	), late AS (
	  INSERT INTO patrol_day_changes (layer_id, tz, day)
	  SELECT DISTINCT $7, $12, p.day FROM ins JOIN pts p USING (t)
	  WHERE cardinality($13::date[]) > 0 AND $7::text IS NOT NULL AND p.day = ANY($13::date[])
	)
	SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM (SELECT pg_notify('` + WorkerChannel + `', '') FROM ev) n)`

// AddTrack stores a batch of the calling account's points (see
// gridmap.PatrolService). Points are converted to WGS84 from the batch's
// CRS; those older than the retention are counted as expired and not
// stored. Returns EINVALID for a bad batch naming the first bad point, or
// an unknown CRS; ETOOLARGE past gridmap.MaxTrackPoints; EFORBIDDEN for a
// caller that is not an account; EUNAVAILABLE, nothing stored, when a
// day's partition must be made and track_points stays locked past the
// lock timeout.
func (s *PatrolStore) AddTrack(ctx context.Context, b *gridmap.TrackBatch) (*gridmap.TrackResult, error) {
	now := time.Now()
	if err := gridmap.CheckTrackBatch(b, now); err != nil {
		return nil, err
	}
	if _, _, err := geo.ToWGS84(b.CRS, 0, 0); err != nil {
		return nil, gridmap.Errorf(gridmap.EINVALID, "%s; nothing was stored", gridmap.ErrorMessage(err))
	}
	c := gridmap.CallerFrom(ctx)
	if c == nil || c.Kind != gridmap.CallerAccount {
		return nil, gridmap.Errorf(gridmap.EFORBIDDEN, "tracks are a worker's own: send them signed in as the worker's account, not with a token")
	}
	cutoff := now.Add(-s.retention)
	n := len(b.Points)
	// In time order: two batches writing the same points take their row
	// locks in the same order, and cannot deadlock.
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int { return b.Points[i].T.Compare(b.Points[j].T) })
	ts, lons, lats, accs := make([]time.Time, 0, n), make([]float64, 0, n), make([]float64, 0, n), make([]*float64, 0, n)
	var days []int64
	// pointDays are the points' days in s.tz; late those of them that are
	// over, or end within dayOverGrace: a batch started then may commit
	// after a measurement of its day began (patrol_days.go).
	var pointDays, late []time.Time
	res := &gridmap.TrackResult{}
	for _, i := range order {
		p := b.Points[i]
		lon, lat, err := geo.ToWGS84(b.CRS, p.Lon, p.Lat)
		if err != nil {
			return nil, gridmap.Errorf(gridmap.EINVALID, "point %d: %s; nothing was stored", i, gridmap.ErrorMessage(err))
		}
		if p.T.Before(cutoff) {
			res.Expired++
			continue
		}
		ts, lons, lats, accs = append(ts, p.T), append(lons, lon), append(lats, lat), append(accs, p.AccuracyM)
		day := localDay(p.T, s.tz)
		pointDays = append(pointDays, day)
		if _, end := dayBounds(day, s.tz); end.Before(now.Add(dayOverGrace)) && !slices.Contains(late, day) {
			late = append(late, day)
		}
		if day := utcDay(p.T); !slices.Contains(days, day) {
			days = append(days, day)
		}
	}
	if len(ts) == 0 {
		return res, nil
	}
	var layer, grid *string
	codes := []string{}
	if c.Person != nil {
		layer, grid = &c.Person.Layer, &c.Person.Grid
		var err error
		if codes, err = s.chain(ctx, c.Person.Layer, c.Person.Grid); err != nil {
			return nil, err
		}
	}
	if len(late) == 0 {
		pointDays = nil // no day to mark: the batch's points go without them
	}
	for attempt := 0; ; attempt++ {
		if err := s.ensureDays(ctx, days); err != nil {
			return nil, err
		}
		var stored, moved int
		err := s.db.Pool.QueryRow(ctx, trackIntakeSQL, c.ID, b.Device, ts, lons, lats, accs, layer, codes,
			c.Name, c.DisplayName, grid, s.tz.String(), late, pointDays).Scan(&stored, &moved)
		if err != nil && attempt == 0 && isSQLState(err, "23514") {
			// A partition remembered was dropped meanwhile (retention on
			// another instance): find out again.
			for _, d := range days {
				s.days.Delete(d)
			}
			continue
		}
		if err != nil {
			return nil, translate(err, "track points")
		}
		res.Stored, res.Duplicates = stored, len(ts)-stored
		return res, nil
	}
}

// chain returns the codes of the chain of grid code of layer, root first
// (empty when the grid does not exist), from the cache while fresh.
func (s *PatrolStore) chain(ctx context.Context, layer, code string) ([]string, error) {
	return s.cached(ctx, &s.chainCache, gridChainSQL, layer, code)
}

// cached returns the codes query (on parameters layer and code) reads,
// from cache c while fresh (chainTTL).
func (s *PatrolStore) cached(ctx context.Context, c *codeCache, query, layer, code string) ([]string, error) {
	key := [2]string{layer, code}
	now := time.Now()
	c.mu.Lock()
	hit, ok := c.codes[key]
	c.mu.Unlock()
	if ok && now.Before(hit.until) {
		return hit.codes, nil
	}
	var codes []string
	if err := s.db.Pool.QueryRow(ctx, query, layer, code).Scan(&codes); err != nil {
		return nil, translate(err, "grid "+code)
	}
	c.mu.Lock()
	if c.codes == nil || len(c.codes) > 10_000 {
		c.codes = map[[2]string]cachedCodes{}
	}
	c.codes[key] = cachedCodes{codes: codes, until: now.Add(chainTTL)}
	c.mu.Unlock()
	return codes, nil
}

// gridChainSQL reads the codes of the chain of current grid $2 of layer
// $1, root first.
const gridChainSQL = `WITH RECURSIVE up AS (
	  SELECT code, parent_code, 0 AS depth FROM grid_versions WHERE layer_id = $1 AND code = $2 AND valid_to IS NULL
	  UNION ALL
	  SELECT g.code, g.parent_code, up.depth + 1 FROM up JOIN grid_versions g ON g.layer_id = $1 AND g.code = up.parent_code AND g.valid_to IS NULL
	  WHERE up.depth < 32)
	SELECT coalesce(array_agg(code ORDER BY depth DESC), '{}') FROM up`

// errNoWorker is the ENOTFOUND of a worker the caller may not see or that
// does not exist: the same answer for both.
func errNoWorker(name string) error {
	return gridmap.Errorf(gridmap.ENOTFOUND, "worker %q does not exist or is outside your area", name)
}

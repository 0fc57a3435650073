package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/tiles"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TileStore renders vector tiles with PostGIS: one statement per tile
// encodes every MVT layer of the tileset (ST_AsMVT over ST_TileEnvelope)
// and reads the version of the tile's area. pgx prepares each statement
// once per connection, and PostgreSQL soon reuses one generic plan for it
// (planning these statements costs more than running them); imports
// refresh the statistics those plans rest on (see GridStore.Import).
type TileStore struct {
	db     *DB
	layers *LayerStore

	mu      sync.Mutex
	defs    map[string]*gridmap.Layer // layer definitions, dropped by Forget
	forgets uint64                    // how many times Forget has run
	// seen is the newest data version of each layer its changes'
	// notices named (FollowTileChanges): a grid tile read from the
	// replica (DB.Read) that is older is read again from the primary, so
	// that a tile drawn after a change is never cached without it.
	seen map[string]int64

	blocks *tileBlocks // nil: every tile from PostGIS (see KeepTileBlocks)
}

var _ gridmap.TileSource = (*TileStore)(nil)

// NewTileStore returns a TileStore over db.
func NewTileStore(db *DB) *TileStore {
	return &TileStore{db: db, layers: NewLayerStore(db), defs: map[string]*gridmap.Layer{}, seen: map[string]int64{}}
}

// saw records that layer's data is at version at least: tiles read from
// the replica must be as new.
func (s *TileStore) saw(layer string, version int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if version > s.seen[layer] {
		s.seen[layer] = version
	}
}

// Forget drops the cached definition of a layer ("" for all), after it
// changed, and the tile blocks drawn with it.
func (s *TileStore) Forget(layer string) {
	s.mu.Lock()
	if layer == "" {
		clear(s.defs)
	} else {
		delete(s.defs, layer)
	}
	s.forgets++
	s.mu.Unlock()
	s.dropBlocks(layer, nil)
}

func (s *TileStore) layer(ctx context.Context, id string) (*gridmap.Layer, error) {
	s.mu.Lock()
	l, ok := s.defs[id]
	forgets := s.forgets
	s.mu.Unlock()
	if ok {
		return l, nil
	}
	l, err := s.layers.Layer(ctx, id)
	if err != nil {
		return nil, err
	}
	// A definition read while one was forgotten may be the old one: it
	// serves this tile, and the next reads it again.
	s.mu.Lock()
	if s.forgets == forgets {
		s.defs[id] = l
	}
	s.mu.Unlock()
	return l, nil
}

// Report clustering: below ClusterBelowZoom reports are drawn as counts per
// cell, ClusterCells cells across a tile.
const (
	ClusterBelowZoom = 15
	ClusterCells     = 16
)

// Tileset describes a layer's tileset, the reports or the hotspots tileset.
func (s *TileStore) Tileset(ctx context.Context, name string) (*gridmap.Tileset, error) {
	if name == gridmap.HotspotsTileset {
		return s.hotspotsTileset(ctx)
	}
	if name == gridmap.ReportsTileset {
		// The extent from the planner's statistics: reading every report
		// for a map's first request would not scale.
		bounds, err := s.bounds(ctx, `SELECT report_estimated_extent()::geometry`)
		if err != nil {
			return nil, translate(err, "reports")
		}
		return &gridmap.Tileset{Name: name, Description: "Reports: clustered into counts below zoom 15, single reports from there on",
			Bounds: bounds, MinZoom: 0, MaxZoom: 16, VectorLayers: []gridmap.VectorLayer{
				{ID: gridmap.TileLayerReports, MinZoom: 0, MaxZoom: ClusterBelowZoom - 1, Description: "clusters of reports",
					Fields: map[string]string{"count": "Number", "urgent": "Number", "open": "Number", "overdue": "Number"}},
				{ID: gridmap.TileLayerReports, MinZoom: ClusterBelowZoom, MaxZoom: 16, Description: "single reports",
					Fields: map[string]string{"id": "Number", "status": "String", "category": "String", "tier": "String", "urgent": "Boolean", "overdue": "Boolean", "primary": "String"}},
			}}, nil
	}
	l, err := s.layer(ctx, name)
	if err != nil {
		return nil, err
	}
	bounds, err := s.bounds(ctx, `SELECT ST_Extent(geom)::geometry FROM grid_versions WHERE layer_id = $1 AND valid_to IS NULL`, l.ID)
	if err != nil {
		return nil, translate(err, "layer "+l.ID)
	}
	ts := &gridmap.Tileset{Name: l.ID, Description: l.Name, Bounds: bounds, MinZoom: 0, MaxZoom: 16}
	minZoom := gridmap.MaxZoom
	for _, lv := range l.Levels {
		minZoom = min(minZoom, l.Zooms[lv][0])
	}
	fields := map[string]string{"code": "String", "name": "String", "level": "String", "depth": "Number", "parent": "String"}
	ts.VectorLayers = []gridmap.VectorLayer{
		{ID: gridmap.TileLayerGrids, MinZoom: minZoom, MaxZoom: ts.MaxZoom, Fields: fields,
			Description: "grids of the levels drawn at each zoom; depth 0 is the coarsest level"},
		{ID: gridmap.TileLayerLabels, MinZoom: minZoom, MaxZoom: ts.MaxZoom, Fields: map[string]string{"code": "String", "name": "String", "level": "String", "depth": "Number"},
			Description: "one point per grid, where its name reads best"},
	}
	return ts, nil
}

// bounds reads the lon/lat box of the geometry extentSQL returns; the
// whole Web Mercator world when it returns none.
func (s *TileStore) bounds(ctx context.Context, extentSQL string, args ...any) ([4]float64, error) {
	var b [4]*float64
	if err := s.db.Pool.QueryRow(ctx, `SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (`+extentSQL+`) x(e)`, args...).
		Scan(&b[0], &b[1], &b[2], &b[3]); err != nil {
		return [4]float64{}, err
	}
	if b[0] == nil {
		return [4]float64{-180, -geo.MercatorMaxLat, 180, geo.MercatorMaxLat}, nil
	}
	return [4]float64{*b[0], *b[1], *b[2], *b[3]}, nil
}

// RenderTile encodes one tile. Returns ENOTFOUND for an unknown tileset.
func (s *TileStore) RenderTile(ctx context.Context, q gridmap.TileQuery) (*gridmap.RenderedTile, error) {
	switch q.Tileset {
	case gridmap.ReportsTileset:
		return s.reportTile(ctx, q)
	case gridmap.HotspotsTileset:
		return s.hotspotTile(ctx, q)
	}
	l, err := s.layer(ctx, q.Tileset)
	if err != nil {
		return nil, err
	}
	band := tiles.BandFor(q.Z)
	if band < 0 && s.blocks != nil {
		return s.blockTile(ctx, l, q)
	}
	levels := l.LevelsAt(q.Z)
	out := &gridmap.RenderedTile{}
	var version, layerVersion int64
	sql, last := bandGridTileSQL, any(band)
	if band < 0 {
		sql, last = rawGridTileSQL, float64(tiles.Buffer)/tiles.Extent
	}
	err = s.readFresh(l.ID, func(pool *pgxpool.Pool) (int64, error) {
		err := pool.QueryRow(ctx, sql, l.ID, q.Z, q.X, q.Y, levels, l.Levels, last).Scan(&out.MVT, &version, &layerVersion)
		return layerVersion, err
	})
	if err != nil {
		return nil, translate(err, "tile "+q.Tileset)
	}
	out.Version = fmt.Sprintf("%s.%d.%d", l.ID, l.CreatedAt.UnixMicro(), version)
	return out, nil
}

// errReplicaBehindNotice is a read on the replica that lacks a change
// already noticed.
var errReplicaBehindNotice = errors.New("the replica is behind a change already noticed")

// readFresh runs read, which returns the data version of layer it saw, on
// the replica when that holds every change of the layer noticed so far
// (FollowTileChanges), else, or when the replica fails, on the primary:
// what is drawn after a change is never read from before it.
func (s *TileStore) readFresh(layer string, read func(pool *pgxpool.Pool) (layerVersion int64, err error)) error {
	s.mu.Lock()
	seen := s.seen[layer]
	s.mu.Unlock()
	return s.db.OnReplica(func(pool *pgxpool.Pool) error {
		v, err := read(pool)
		if err == nil && pool != s.db.Pool && v < seen {
			return errReplicaBehindNotice
		}
		return err
	}, func(err error) bool { return err == errReplicaBehindNotice })
}

// Features go in a fixed order (coarse levels first, so children draw over
// their parents; then by code), so that every instance encodes the same
// tile byte for byte.

// Grid tiles from zoom tiles.RawZoom: the grids themselves, cut to the tile
// (with its buffer) in lon/lat before projecting, so a borough of 75,000
// vertices costs what its piece in the tile costs. Only grids whose geometry
// meets the tile itself are drawn.
const rawGridTileSQL = `
WITH env AS (
	SELECT ST_TileEnvelope($2, $3, $4) AS e, ST_Transform(ST_TileEnvelope($2, $3, $4), 4326) AS e4326,
	       ST_Transform(ST_TileEnvelope($2, $3, $4, margin => $7), 4326) AS clip
), g AS (
	SELECT v.code, v.name, v.level, array_position($6::text[], v.level) - 1 AS depth, v.parent_code AS parent,
	       ST_AsMVTGeom(ST_Transform(ST_ClipByBox2D(v.geom, env.clip), 3857), env.e, 4096, 64, true) AS geom
	FROM grid_versions v, env
	WHERE v.layer_id = $1 AND v.valid_to IS NULL AND v.level = ANY($5)
	  AND v.geom && env.e4326 AND ST_Intersects(v.geom, env.e4326)
), l AS (
	SELECT lb.code, v.name, v.level, array_position($6::text[], v.level) - 1 AS depth,
	       ST_AsMVTGeom(lb.geom, env.e, 4096, 0, false) AS geom
	FROM grid_labels lb JOIN grid_versions v ON v.id = lb.version_id, env
	WHERE lb.layer_id = $1 AND v.level = ANY($5) AND lb.geom && env.e
)
SELECT (SELECT coalesce(ST_AsMVT(g, 'grids', 4096, 'geom'), '') FROM (SELECT * FROM g WHERE geom IS NOT NULL ORDER BY depth, code) g)
    || (SELECT coalesce(ST_AsMVT(l, 'labels', 4096, 'geom'), '') FROM (SELECT * FROM l WHERE geom IS NOT NULL ORDER BY depth, code) l),
       (SELECT coalesce(max(c.data_version), 0) FROM layer_changes c, env WHERE c.layer_id = $1 AND c.area && env.e),
       coalesce((SELECT data_version FROM layers WHERE id = $1), -1)`

// Grid tiles below tiles.RawZoom: the generalised shapes of the tile's band.
const bandGridTileSQL = `
WITH env AS (SELECT ST_TileEnvelope($2, $3, $4) AS e),
g AS (
	SELECT s.code, v.name, v.level, array_position($6::text[], v.level) - 1 AS depth, v.parent_code AS parent,
	       ST_AsMVTGeom(s.geom, env.e, 4096, 64, true) AS geom
	FROM grid_shapes s JOIN grid_versions v ON v.id = s.version_id, env
	WHERE s.layer_id = $1 AND s.band = $7 AND v.level = ANY($5) AND s.geom && env.e AND ST_Intersects(s.geom, env.e)
), l AS (
	SELECT lb.code, v.name, v.level, array_position($6::text[], v.level) - 1 AS depth,
	       ST_AsMVTGeom(lb.geom, env.e, 4096, 0, false) AS geom
	FROM grid_labels lb JOIN grid_versions v ON v.id = lb.version_id, env
	WHERE lb.layer_id = $1 AND v.level = ANY($5) AND lb.geom && env.e
	  AND EXISTS (SELECT 1 FROM grid_shapes s WHERE s.layer_id = $1 AND s.band = $7 AND s.code = lb.code)
)
SELECT (SELECT coalesce(ST_AsMVT(g, 'grids', 4096, 'geom'), '') FROM (SELECT * FROM g WHERE geom IS NOT NULL ORDER BY depth, code) g)
    || (SELECT coalesce(ST_AsMVT(l, 'labels', 4096, 'geom'), '') FROM (SELECT * FROM l WHERE geom IS NOT NULL ORDER BY depth, code) l),
       (SELECT coalesce(max(c.data_version), 0) FROM layer_changes c, env WHERE c.layer_id = $1 AND c.area && env.e),
       coalesce((SELECT data_version FROM layers WHERE id = $1), -1)`

// reportFilter holds a tile query's report filters as the parameters of
// reportTileFilterSQL: NULL (nil) for no filter.
type reportFilter struct {
	statuses              []string
	negate                bool
	categories            []string
	since, until          *time.Time
	scopeLayer, scopeCode *string
}

// reportFilter checks q's report filters and reads them as parameters.
// Returns EINVALID for a bad filter or an unknown category.
func (s *TileStore) reportFilter(ctx context.Context, q gridmap.TileQuery) (reportFilter, error) {
	var f reportFilter
	if err := q.CheckReportFilter(); err != nil {
		return f, err
	}
	if !q.Since.IsZero() {
		f.since = &q.Since
	}
	if !q.Until.IsZero() {
		f.until = &q.Until
	}
	var err error
	if f.categories, err = s.db.categorySubtree(ctx, q.Category); err != nil {
		return f, err
	}
	f.statuses, f.negate = dispatch.StatusFilter(q.Status)
	if q.Scope != nil {
		f.scopeLayer, f.scopeCode = &q.Scope.Layer, &q.Scope.Code
	}
	return f, nil
}

func (s *TileStore) reportTile(ctx context.Context, q gridmap.TileQuery) (*gridmap.RenderedTile, error) {
	f, err := s.reportFilter(ctx, q)
	if err != nil {
		return nil, err
	}
	sql := singleReportTileSQL
	if q.Z < ClusterBelowZoom {
		sql = clusterReportTileSQL
	}
	out := &gridmap.RenderedTile{}
	var count int64
	var sum string
	err = s.db.Pool.QueryRow(ctx, sql, q.Z, q.X, q.Y, f.statuses, f.negate, f.categories, f.since, dispatch.DoneStatuses, ClusterCells,
		f.scopeLayer, f.scopeCode, dispatch.ClockStopped, f.until).
		Scan(&out.MVT, &count, &sum)
	if err != nil {
		return nil, translate(err, "report tile")
	}
	out.Version = fmt.Sprintf("r.%d.%s", count, sum)
	return out, nil
}

// reportsInTileSQL selects the reports drawn in tile $1/$2/$3 that pass the
// filters ($4, $5 the statuses and whether they are negated, from
// dispatch.StatusFilter; $6 the category codes, from categorySubtree; $7
// since, $13 until; $10, $11 the scope, from scopeParams of the caller the
// query carries; NULL for no filter: reportTileFilterSQL), as points in EPSG:3857 (a line or area report
// at a point on it); $8 is dispatch.DoneStatuses, $12 dispatch.ClockStopped:
// a report is overdue when its clock runs and due_at has passed. The tile's version is the count, a sum of
// hashes of (id, updated_at) of those reports and how many are overdue: any
// change to one of them changes it, in whatever order transactions commit,
// and so does a deadline passing.
//
// A low-zoom tile holds tens of thousands of reports (a z12 tile of a year
// of a district's: 27,000), so the work per report counts: the inner query
// is kept apart (OFFSET 0) so that each point is projected once rather than
// once for the filter and again for the output, the hash is taken over
// integers rather than over text made of a timestamp (5 us a report), and
// env carries the envelope's numbers the clusters are cut by.
var reportsInTileSQL = `
WITH env AS (
	SELECT e, ST_Transform(e, 4326) AS e4326, ST_XMin(e) AS x0, ST_YMin(e) AS y0,
	       ST_XMax(e) - ST_XMin(e) AS width, ST_YMax(e) - ST_YMin(e) AS height
	FROM ST_TileEnvelope($1, $2, $3) e
),
r AS (
	SELECT x.* FROM (
		SELECT r.id, r.status, r.category, r.tier, r.urgent, r.primary_code, r.updated_at,
		       NOT (r.status = ANY($8::text[])) AS open,
		       NOT (r.status = ANY($12::text[])) AND r.due_at < now() AS overdue,
		       ST_Transform(CASE WHEN GeometryType(r.location) = 'POINT' THEN r.location ELSE ST_PointOnSurface(r.location) END, 3857) AS pt
		FROM reports r, env
		WHERE r.location && env.e4326 AND ` + reportTileFilterSQL + `
		OFFSET 0
	) x, env WHERE x.pt && env.e
)`

// reportTileFilterSQL is true for a report r passing a tile query's report
// filters, in the parameters reportsInTileSQL describes; every tileset of
// reports filters with it.
var reportTileFilterSQL = `($4::text[] IS NULL OR (r.status = ANY($4)) <> $5)
		  AND ($6::text[] IS NULL OR r.category = ANY($6))
		  AND ($7::timestamptz IS NULL OR r.reported_at >= $7) AND ` + reportsFromSQL("r.id", "$7::timestamptz") + `
		  AND ($13::timestamptz IS NULL OR r.reported_at < $13)
		  AND ` + reportInScopeSQL("r", "$10", "$11")

const reportVersionSQL = `(SELECT count(*) FROM r),
	(SELECT coalesce(sum(hashint8extended(id, (extract(epoch FROM updated_at) * 1000000)::bigint)), 0)::text
	        || '.' || count(*) FILTER (WHERE overdue) FROM r)`

// Clusters: reports grouped by cell ($9 cells across the tile), drawn at
// the mean position of their reports.
var clusterReportTileSQL = reportsInTileSQL + `,
c AS (
	SELECT count(*) AS count, count(*) FILTER (WHERE urgent) AS urgent, count(*) FILTER (WHERE open) AS open,
	       count(*) FILTER (WHERE overdue) AS overdue,
	       ST_AsMVTGeom(ST_MakePoint(avg(ST_X(pt)), avg(ST_Y(pt))), (SELECT e FROM env), 4096, 0, false) AS geom
	FROM r, env
	GROUP BY floor((ST_X(pt) - env.x0) / env.width * $9), floor((ST_Y(pt) - env.y0) / env.height * $9)
)
SELECT (SELECT coalesce(ST_AsMVT(c, 'reports', 4096, 'geom'), '') FROM (SELECT * FROM c WHERE geom IS NOT NULL ORDER BY count DESC) c), ` + reportVersionSQL

var singleReportTileSQL = reportsInTileSQL + `,
s AS (
	SELECT id, status, category, tier, urgent, overdue, primary_code AS "primary", ST_AsMVTGeom(pt, env.e, 4096, 0, false) AS geom
	FROM r, env WHERE $9::int > 0
)
SELECT (SELECT coalesce(ST_AsMVT(s, 'reports', 4096, 'geom'), '') FROM (SELECT * FROM s WHERE geom IS NOT NULL ORDER BY id) s), ` + reportVersionSQL

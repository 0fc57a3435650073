package postgres

import (
	"context"
	"fmt"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
)

// Hotspot bins: a hotspot tile at zoom z counts reports in square bins that
// are the tiles of zoom z+HotspotBinShift beneath it, 1<<HotspotBinShift
// (32) across, so a bin is the same size on screen at every zoom (16 px of
// a 512 px tile as MapLibre draws them) and each bin of one zoom is four
// bins of the next. Bins are aligned to the tile grid, so a bin lies in one
// tile only and the counts of a tile are exact, with no partial bins along
// its edges.
const (
	HotspotBinShift = 5
	HotspotBins     = 1 << HotspotBinShift
)

// HotspotMaxZoom is the last zoom of the hotspots tileset: a z16 bin is
// about 5 m across, below the accuracy of most reports.
const HotspotMaxZoom = 16

func (s *TileStore) hotspotsTileset(ctx context.Context) (*gridmap.Tileset, error) {
	bounds, err := s.bounds(ctx, `SELECT ST_EstimatedExtent('reports', 'location')::geometry`)
	if err != nil {
		return nil, translate(err, "reports")
	}
	return &gridmap.Tileset{Name: gridmap.HotspotsTileset,
		Description: fmt.Sprintf("Report density: reports counted in square bins, %d across a tile at every zoom", HotspotBins),
		Bounds:      bounds, MinZoom: 0, MaxZoom: HotspotMaxZoom, VectorLayers: []gridmap.VectorLayer{
			{ID: gridmap.TileLayerHotspots, MinZoom: 0, MaxZoom: HotspotMaxZoom,
				Description: "one square per bin holding reports: how many, how many urgent, open, and open past due",
				Fields:      map[string]string{"count": "Number", "urgent": "Number", "open": "Number", "overdue": "Number"}},
		}}, nil
}

// hotspotTile renders a hotspots tile. Returns EINVALID for a bad filter.
func (s *TileStore) hotspotTile(ctx context.Context, q gridmap.TileQuery) (*gridmap.RenderedTile, error) {
	f, err := s.reportFilter(ctx, q)
	if err != nil {
		return nil, err
	}
	out := &gridmap.RenderedTile{}
	var count int64
	var sum string
	err = s.db.Pool.QueryRow(ctx, hotspotTileSQL, q.Z, q.X, q.Y, f.statuses, f.negate, f.categories, f.since, dispatch.DoneStatuses, HotspotBinShift,
		f.scopeLayer, f.scopeCode, dispatch.ClockStopped, f.until).
		Scan(&out.MVT, &count, &sum)
	if err != nil {
		return nil, translate(err, "hotspot tile")
	}
	out.Version = fmt.Sprintf("h.%d.%s", count, sum)
	return out, nil
}

// hotspotTileSQL counts the reports of tile $1/$2/$3 that pass the filters
// (the parameters of reportsInTileSQL; $9 is HotspotBinShift) by bin: the
// bin of a report is the tile at zoom $1 + $9 holding its point (a line or
// area report: a point on it), worked out with floor() on the Web Mercator
// position computed from longitude and latitude (a report on a bin's edge
// counts in the bin east and south of it, as a point on a tile's edge lies in
// the tile east and south of it). The version is that of reportsInTileSQL
// (count, sum of hashes of (id, updated_at), overdue count), so a hotspot
// tile changes exactly when the report tile of the same place and filters
// does.
//
// The work per report is what counts (a z12 tile of a city may hold 100,000
// reports): the index on reports.location picks the tile's reports, each
// is read once, binned by arithmetic rather than projected with
// ST_Transform, and aggregated in one GROUP BY that also sums the version's
// hashes; only the bins (at most 1,024) are drawn.
var hotspotTileSQL = `
WITH env AS (
	SELECT ST_TileEnvelope($1, $2, $3) AS e, ST_Transform(ST_TileEnvelope($1, $2, $3), 4326) AS e4326,
	       (1::bigint << ($1 + $9)::int)::float8 AS n
),
r AS (
	SELECT r.id, r.updated_at, r.urgent, NOT (r.status = ANY($8::text[])) AS open,
	       NOT (r.status = ANY($12::text[])) AND r.due_at < now() AS overdue,
	       CASE WHEN GeometryType(r.location) = 'POINT' THEN r.location ELSE ST_PointOnSurface(r.location) END AS pt
	FROM reports r, env
	WHERE r.location && env.e4326 AND ` + reportTileFilterSQL + `
	OFFSET 0
),
b AS (
	SELECT floor((ST_X(pt) + 180) / 360 * env.n)::bigint AS bx,
	       floor((1 - asinh(tan(radians(ST_Y(pt)))) / pi()) / 2 * env.n)::bigint AS by,
	       id, updated_at, urgent, open, overdue
	FROM r, env
	OFFSET 0
),
bins AS (
	SELECT bx, by, count(*) AS count, count(*) FILTER (WHERE urgent) AS urgent, count(*) FILTER (WHERE open) AS open,
	       count(*) FILTER (WHERE overdue) AS overdue, sum(hashint8extended(id, (extract(epoch FROM updated_at) * 1000000)::bigint)) AS hash
	FROM b
	WHERE bx >> $9::int = $2 AND by >> $9::int = $3
	GROUP BY bx, by
)
SELECT (SELECT coalesce(ST_AsMVT(t, 'hotspots', 4096, 'geom'), '') FROM (
	        SELECT count, urgent, open, overdue, ST_AsMVTGeom(ST_TileEnvelope($1 + $9, bx::int, by::int), env.e, 4096, 0, false) AS geom
	        FROM bins, env ORDER BY by, bx) t),
       (SELECT coalesce(sum(count), 0) FROM bins),
       (SELECT coalesce(sum(hash), 0)::text || '.' || coalesce(sum(overdue), 0) FROM bins)`

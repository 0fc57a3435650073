package postgres

import (
	"context"
	"fmt"
	"hash/fnv"

	"github.com/jackc/pgx/v5"

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
	bounds, err := s.bounds(ctx, `SELECT report_estimated_extent()::geometry`)
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
	if q.Z > HotspotMaxZoom {
		return nil, gridmap.Errorf(gridmap.ENOTFOUND, "hotspot tiles go down to zoom %d (a bin is then about 5 m across); zoom %d has none",
			HotspotMaxZoom, q.Z)
	}
	f, err := s.reportFilter(ctx, q)
	if err != nil {
		return nil, err
	}
	lo, hi := HotspotCellRange(q.Z, q.X, q.Y)
	out := &gridmap.RenderedTile{}
	var count int64
	// Planned for each tile's own filters (an unnamed statement): with no
	// scope the plan is an index-only scan of reports_cell, which a plan
	// cached for any scope could not be.
	err = s.db.Pool.QueryRow(ctx, hotspotTileSQL, pgx.QueryExecModeDescribeExec, q.Z, q.X, q.Y, f.statuses, f.negate, f.categories,
		f.since, dispatch.DoneStatuses, HotspotBinShift, f.scopeLayer, f.scopeCode, dispatch.ClockStopped, f.until,
		lo, hi, 2*(hotspotCellZoom-q.Z-HotspotBinShift)).
		Scan(&out.MVT, &count)
	if err != nil {
		return nil, translate(err, "hotspot tile")
	}
	// The tile is nothing but its counts: its bytes name its version.
	h := fnv.New64a()
	h.Write(out.MVT)
	out.Version = fmt.Sprintf("h.%d.%x", count, h.Sum64())
	return out, nil
}

// hotspotCellZoom is the zoom of the tiles reports.cell codes (migration
// 00022): bins down to zoom 21 (HotspotMaxZoom + HotspotBinShift) are
// groups of them, which is why hotspot tiles stop at HotspotMaxZoom.
const hotspotCellZoom = 24

// HotspotCellRange returns the first and last reports.cell codes of the
// tile z/x/y (z at most 24): the Morton code of the tile, shifted to zoom
// 24, and the same with every lower bit set.
func HotspotCellRange(z, x, y int) (lo, hi int64) {
	code := spreadBits(uint64(x)) | spreadBits(uint64(y))<<1
	shift := 2 * (hotspotCellZoom - z)
	lo = int64(code << shift)
	return lo, lo | (1<<shift - 1)
}

// spreadBits spaces the 24 low bits of v one bit apart, as
// report_cell_spread does.
func spreadBits(v uint64) uint64 {
	v &= 1<<24 - 1
	v = (v | v<<16) & 0x0000FFFF0000FFFF
	v = (v | v<<8) & 0x00FF00FF00FF00FF
	v = (v | v<<4) & 0x0F0F0F0F0F0F0F0F
	v = (v | v<<2) & 0x3333333333333333
	return (v | v<<1) & 0x5555555555555555
}

// hotspotTileSQL counts the reports of tile $1/$2/$3 that pass the filters
// (the parameters of reportsInTileSQL; $9 is HotspotBinShift) by bin: the
// bin of a report is the tile at zoom $1 + $9 holding its point (a line or
// area report: a point on it), its reports.cell code (migration 00022)
// shifted right by $16; the tile's reports are the codes $14 to $15. A
// report on a bin's edge counts in the bin east and south of it, as a
// point on a tile's edge lies in the tile east and south of it, and a
// report beyond the Web Mercator latitudes (85.05) in the top or bottom
// row of tiles. The tile holds nothing but the counts, so its version is
// a hash of its bytes (hotspotTile): it changes exactly when a count does,
// overdue ones included as deadlines pass.
//
// The work per report is what counts (a z12 tile of a city may hold 100,000
// reports): reports_cell gives the tile's reports in code order with every
// column the counts and filters need, without reading the reports' rows,
// and without updated_at, so that an update touching only it stays a HOT
// update; they are aggregated in one GROUP BY, and only the bins (at most
// 1,024) are drawn.
var hotspotTileSQL = `
WITH bins AS (
	SELECT r.cell >> $16::int AS bin, count(*) AS count, count(*) FILTER (WHERE r.urgent) AS urgent,
	       count(*) FILTER (WHERE NOT (r.status = ANY($8::text[]))) AS open,
	       count(*) FILTER (WHERE NOT (r.status = ANY($12::text[])) AND r.due_at < now()) AS overdue
	FROM reports r
	WHERE r.cell BETWEEN $14 AND $15 AND ` + reportTileFilterSQL + `
	GROUP BY 1
)
SELECT (SELECT coalesce(ST_AsMVT(t, 'hotspots', 4096, 'geom'), '') FROM (
	        SELECT count, urgent, open, overdue,
	               ST_AsMVTGeom(ST_TileEnvelope($1::int + $9::int, report_cell_compact(bin)::int, report_cell_compact(bin >> 1)::int),
	                            ST_TileEnvelope($1::int, $2::int, $3::int), 4096, 0, false) AS geom
	        FROM bins ORDER BY bin) t),
       (SELECT coalesce(sum(count), 0) FROM bins)`

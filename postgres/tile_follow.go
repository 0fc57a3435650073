package postgres

import (
	"context"
	"encoding/json"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
)

// TileInvalidator drops cached tiles: those of tileset meeting one of
// boxes (lon/lat), or all of the tileset for nil boxes.
type TileInvalidator interface {
	Invalidate(tileset string, boxes [][4]float64) int
	InvalidateAll()
}

// reportTilesets are the tilesets drawn from reports: a report change
// drops their tiles at the report's place.
var reportTilesets = []string{gridmap.ReportsTileset, gridmap.HotspotsTileset}

// FollowTileChanges keeps a tile cache in step with the database until ctx
// ends: boundary changes drop the tiles of their layer within the change's
// box, report changes the tiles of reportTilesets at the reports' places, a new layer
// definition its whole tileset. Every instance follows the same
// notifications. After (re)connecting everything is dropped, since changes
// may have been missed; ready is called once the first LISTEN is in place.
func (s *TileStore) FollowTileChanges(ctx context.Context, cache TileInvalidator, ready func()) {
	s.db.retryUntilDone(ctx, "following changes for the tile cache", func(ctx context.Context) error {
		conn, err := s.db.listenConn(ctx, ChangeChannel, ReportChannel)
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		// Changes made while not listening were not noticed: the versions
		// now are what tiles from the replica must have. Definitions and
		// blocks are dropped after: one read before would pass the check
		// against the versions before.
		rows, err := s.db.Pool.Query(ctx, `SELECT id, data_version FROM layers`)
		if err != nil {
			return err
		}
		var id string
		var version int64
		if _, err := pgx.ForEachRow(rows, []any{&id, &version}, func() error { s.saw(id, version); return nil }); err != nil {
			return err
		}
		s.Forget("")
		cache.InvalidateAll()
		if ready != nil {
			ready()
			ready = nil
		}
		for {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				return err
			}
			if n.Channel == ReportChannel {
				var rc ReportChange
				var boxes [][4]float64 // nil: every tile
				if json.Unmarshal([]byte(n.Payload), &rc) == nil && len(rc.Boxes) > 0 {
					boxes = rc.Boxes
				}
				for _, tileset := range reportTilesets {
					cache.Invalidate(tileset, boxes)
				}
				continue
			}
			var ch gridmap.Change
			if json.Unmarshal([]byte(n.Payload), &ch) != nil || ch.Layer == "" {
				s.Forget("")
				cache.InvalidateAll()
				continue
			}
			s.saw(ch.Layer, ch.DataVersion)
			switch {
			case ch.Kind == gridmap.ChangePeople:
				// Tiles show no people.
			case ch.Kind == gridmap.ChangeLayer || len(ch.BBox) != 4:
				s.Forget(ch.Layer)
				cache.Invalidate(ch.Layer, nil)
			default:
				box := [][4]float64{{ch.BBox[0], ch.BBox[1], ch.BBox[2], ch.BBox[3]}}
				s.dropBlocks(ch.Layer, box)
				cache.Invalidate(ch.Layer, box)
			}
		}
	})
}

package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb/encoding/wkb"
	"github.com/paulmach/orb/geojson"
)

// validateSQL finds every problem the working copies leave in the layer:
// parents missing or not coarser, children outside their parent, siblings
// overlapping, geometry made invalid. Only grids in the changeset, their
// children and the siblings they touch are looked at, through the indexes:
// state is only ever read LATERAL from one working copy (OFFSET 0 keeps
// the subquery whole), so that the copy's code, parent or box reaches each
// branch of its UNION ALL as an index condition. Joined to state as a whole, PostgreSQL read every grid
// of the layer three times (0.7 s an edit in a layer of 60,000).
// $1 layer, $2 levels coarsest first, $3 tolerated area in m2. The grids
// are those of table (see stateOf).
var validateSQL = map[string]string{publishedTable: validateSQLOf(publishedTable), draftTable: validateSQLOf(draftTable)}

func validateSQLOf(table string) string {
	return `
WITH state AS NOT MATERIALIZED ` + stateOf(table) + `,
work AS NOT MATERIALIZED (SELECT * FROM cs_work WHERE NOT deleted)
-- a working copy whose parent is gone, or not at a coarser level
SELECT 'unknown_parent', ARRAY[w.code, w.parent_code], NULL::bytea, NULL::float8,
       CASE WHEN p.code IS NULL THEN format('parent %s of %s does not exist in the layer', w.parent_code, w.code)
            ELSE format('parent %s of %s is at level %s, which is not coarser than %s', p.code, w.code, p.level, w.level) END
FROM work w LEFT JOIN LATERAL (SELECT p.code, p.level FROM state p WHERE p.code = w.parent_code OFFSET 0) p ON true
WHERE w.parent_code IS NOT NULL
  AND (p.code IS NULL OR array_position($2::text[], p.level) >= array_position($2::text[], w.level))
UNION ALL
-- children left behind by a deleted grid
SELECT 'unknown_parent', ARRAY[c.code, d.code], NULL, NULL,
       format('%s is deleted but %s still names it as parent: delete, merge or move the children too', d.code, c.code)
FROM cs_work d CROSS JOIN LATERAL (SELECT c.code FROM state c WHERE c.parent_code = d.code OFFSET 0) c
WHERE d.deleted
UNION ALL
-- geometry the operations made invalid or empty
SELECT 'invalid_geometry', ARRAY[w.code], ST_AsBinary(ST_PointOnSurface(ST_Boundary(w.geom))), NULL,
       format('%s would be left %s', w.code, CASE WHEN ST_IsEmpty(w.geom) THEN 'empty' ELSE 'invalid: ' || ST_IsValidReason(w.geom) END)
FROM work w WHERE ST_IsEmpty(w.geom) OR NOT ST_IsValid(w.geom)
UNION ALL
-- a working copy reaching outside its parent, or a child reaching outside its changed parent
SELECT 'outside_parent', ARRAY[o.child, o.parent], ST_AsBinary(x.d), x.a,
       format('%s reaches %s m2 outside its parent %s', o.child, round(x.a::numeric, 1), o.parent)
FROM (SELECT c.code AS child, p.code AS parent, c.geom AS cg, p.geom AS pg
        FROM work c CROSS JOIN LATERAL (SELECT p.code, p.geom FROM state p WHERE p.code = c.parent_code OFFSET 0) p
      UNION ALL
      SELECT c.code, p.code, c.geom, p.geom
        FROM work p CROSS JOIN LATERAL (SELECT c.code, c.geom FROM ` + table + ` c
                                        WHERE c.layer_id = $1 AND c.valid_to IS NULL AND c.parent_code = p.code OFFSET 0) c
       WHERE NOT EXISTS (SELECT 1 FROM cs_work w WHERE w.code = c.code)) o
CROSS JOIN LATERAL (SELECT ST_CollectionExtract(ST_Difference(o.cg, o.pg), 3) AS d
                    WHERE NOT ST_IsEmpty(o.cg) AND NOT ST_Covers(o.pg, o.cg)) d0
CROSS JOIN LATERAL (SELECT d0.d AS d, ST_Area(d0.d::geography) AS a) x
WHERE x.a > $3
UNION ALL
-- siblings overlapping a working copy
SELECT 'overlaps_sibling', ARRAY[w.code, s.code], ST_AsBinary(x.i), x.a,
       format('%s overlaps its sibling %s by %s m2', w.code, s.code, round(x.a::numeric, 1))
FROM work w CROSS JOIN LATERAL (SELECT s.code, s.geom FROM state s
  WHERE s.geom && w.geom AND s.level = w.level AND s.parent_code IS NOT DISTINCT FROM w.parent_code AND s.code <> w.code OFFSET 0) s
CROSS JOIN LATERAL (SELECT ST_CollectionExtract(ST_Intersection(w.geom, s.geom), 3) AS i
                    WHERE ST_Relate(s.geom, w.geom, '2********')) i0 -- only pairs whose interiors meet
CROSS JOIN LATERAL (SELECT i0.i AS i, ST_Area(i0.i::geography) AS a) x
WHERE x.a > $3 AND (w.code < s.code OR s.code NOT IN (SELECT code FROM work))`
}

func (c *changeset) validate(ctx context.Context) error {
	rows, err := c.tx.Query(ctx, validateSQL[c.grids], c.layer.ID, c.layer.Levels, gridmap.ToleranceAreaM2)
	if err != nil {
		return err
	}
	problems, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (gridmap.Problem, error) {
		var p gridmap.Problem
		var where []byte
		var area *float64
		if err := r.Scan(&p.Kind, &p.Codes, &where, &area, &p.Message); err != nil {
			return p, err
		}
		p.AreaM2 = area
		if where != nil {
			if g, err := wkb.Unmarshal(where); err == nil {
				p.Where = geojson.NewGeometry(g)
			}
		}
		return p, nil
	})
	if err != nil {
		return err
	}
	c.problems = append(c.problems, problems...)
	return nil
}

// impact fills in the grids a changeset touches and the area that changes hands.
func (c *changeset) impact(ctx context.Context, res *gridmap.ChangesetResult) error {
	rows, err := c.tx.Query(ctx, `SELECT code FROM cs_work ORDER BY code`)
	if err != nil {
		return err
	}
	codes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	res.Impact = gridmap.Impact{Grids: codes, Reports: []string{}, Reroutes: []gridmap.Reroute{}}
	// Every square metre that changes owner is gained by exactly one grid.
	if err := c.tx.QueryRow(ctx, `SELECT coalesce(sum(ST_Area(
			CASE WHEN old_geom IS NULL THEN geom ELSE ST_CollectionExtract(ST_Difference(geom, old_geom), 3) END::geography)), 0)
		FROM cs_work WHERE NOT deleted`).Scan(&res.Impact.AreaMovedM2); err != nil {
		return err
	}
	if c.draft {
		return nil // a draft routes no report until it is published
	}
	return c.reroutes(ctx, res)
}

// reroutes lists the open point reports in the changed area whose finest
// grid in the layer as the changeset leaves it is not their owner now.
func (c *changeset) reroutes(ctx context.Context, res *gridmap.ChangesetResult) error {
	found, err := findReroutes(ctx, c.tx, c.layer.ID, stateSQL, `SELECT geom AS g FROM cs_work WHERE NOT deleted
		UNION ALL SELECT old_geom FROM cs_work WHERE old_geom IS NOT NULL`)
	if err != nil {
		return err
	}
	for _, rr := range found {
		res.Impact.Reports = append(res.Impact.Reports, rr.Report)
		res.Impact.Reroutes = append(res.Impact.Reroutes, rr)
	}
	return nil
}

// findReroutes lists the open point reports of layer ($1) inside the
// geometries areaSQL selects (column g) whose finest grid in state (a
// subquery of the layer's grids with code, parent_code and geom) differs
// from their primary owner. Reports left outside every grid keep theirs.
func findReroutes(ctx context.Context, q querier, layer, state, areaSQL string) ([]gridmap.Reroute, error) {
	// Each area is tested on its own: collected into one geometry, old and
	// new shapes sharing edges make a GeometryCollection GEOS cannot
	// intersect ("side location conflict"), whereas a point against one
	// polygon is a point-in-polygon test that never fails. The reports hit
	// are read once, with what the answer needs: read again by id, the
	// planner priced a probe of every month for each and could hash all
	// reports instead.
	rows, err := q.Query(ctx, `WITH state AS NOT MATERIALIZED `+state+`,
		area AS MATERIALIZED (`+areaSQL+`),
		hit AS (SELECT DISTINCT ON (r.id) r.id, r.external_id, r.primary_code, r.location
		  FROM area JOIN reports r ON r.location && area.g AND ST_Intersects(r.location, area.g)
		  WHERE r.layer_id = $1 AND r.status <> ALL($2) AND r.primary_code IS NOT NULL AND GeometryType(r.location) = 'POINT'
		  ORDER BY r.id)
		SELECT h.id::text, h.external_id, h.primary_code,
		  (SELECT l.code FROM state l WHERE l.geom && h.location AND ST_Covers(l.geom, h.location)
		     AND NOT EXISTS (SELECT 1 FROM state k WHERE k.parent_code = l.code)
		   ORDER BY l.code LIMIT 1)
		FROM hit h
		ORDER BY h.id`, layer, dispatch.DoneStatuses)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []gridmap.Reroute
	for rows.Next() {
		var rr gridmap.Reroute
		var to *string
		if err := rows.Scan(&rr.Report, &rr.ExternalID, &rr.From, &to); err != nil {
			return nil, err
		}
		if to != nil && *to != rr.From {
			rr.To = *to
			out = append(out, rr)
		}
	}
	return out, rows.Err()
}

// commit closes the current version of every grid in the changeset, writes
// the new versions, bumps the layer's data version and announces the change.
func (c *changeset) commit(ctx context.Context, cs *gridmap.Changeset, res *gridmap.ChangesetResult) error {
	tx, layer := c.tx, c.layer.ID
	if _, err := tx.Exec(ctx, `UPDATE grid_versions g SET valid_to = now() FROM cs_work w
		WHERE g.layer_id = $1 AND g.valid_to IS NULL AND g.code = w.code`, layer); err != nil {
		return err
	}
	// A grid without a base version had no current version: it is created
	// (a new code, or one deleted before), whatever its version number.
	rows, err := tx.Query(ctx, `WITH ins AS (
		INSERT INTO grid_versions (layer_id, code, version, name, level, parent_code, geom, attributes, valid_from, author, reason)
		SELECT $1, w.code, coalesce((SELECT max(v.version) FROM grid_versions v WHERE v.layer_id = $1 AND v.code = w.code), 0) + 1,
		       w.name, w.level, w.parent_code, w.geom, w.attributes, now(), $2, $3
		FROM cs_work w WHERE NOT w.deleted
		RETURNING code, version)
		SELECT ins.code, ins.version, w.base_version IS NULL FROM ins JOIN cs_work w ON w.code = ins.code ORDER BY ins.code`,
		layer, cs.Author, cs.Reason)
	if err != nil {
		return err
	}
	var code string
	var version int
	var created bool
	if _, err := pgx.ForEachRow(rows, []any{&code, &version, &created}, func() error {
		res.Versions[code] = version
		if created {
			res.Created = append(res.Created, code)
		}
		return nil
	}); err != nil {
		return err
	}
	change := gridmap.Change{Layer: layer, Kind: gridmap.ChangeBoundaries, Codes: res.Impact.Grids}
	var bbox [4]*float64
	if err := tx.QueryRow(ctx, `UPDATE layers SET data_version = data_version + 1, updated_at = now() WHERE id = $1 RETURNING data_version`,
		layer).Scan(&change.DataVersion); err != nil {
		return err
	}
	if err := tx.QueryRow(ctx, `SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM
		(SELECT ST_Extent(g)::geometry AS e FROM (SELECT geom AS g FROM cs_work UNION ALL SELECT old_geom FROM cs_work) x) y`).
		Scan(&bbox[0], &bbox[1], &bbox[2], &bbox[3]); err != nil {
		return err
	}
	if bbox[0] != nil {
		change.BBox = []float64{*bbox[0], *bbox[1], *bbox[2], *bbox[3]}
	}
	moved, err := refreshShapes(ctx, tx, layer, res.Impact.Grids, change.BBox)
	if err != nil {
		return err
	}
	change.BBox = unionBBox(change.BBox, moved)
	res.DataVersion = change.DataVersion
	if err := applyReroutes(ctx, tx, layer, res.Impact.Reroutes, change.DataVersion-1, change.DataVersion); err != nil {
		return err
	}
	if err := rechain(ctx, tx, layer, res.Impact.Grids, res.Impact.Reroutes, change.DataVersion); err != nil {
		return err
	}
	return notifyChange(ctx, tx, change)
}

// unionBBox returns the lon/lat box covering a and b (either may be nil).
func unionBBox(a, b []float64) []float64 {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	return []float64{min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])}
}

// notifyChange records a change and announces it on ChangeChannel when the
// transaction commits. The record is a boundary event of the live feed
// (Feed), with the announced JSON, and says where the change happened, from
// which tile versions derive; a people change happened nowhere on a tile.
// NOTIFY payloads are limited to 8000 bytes: a change touching very many
// grids is announced without its codes (the bounding box still says where).
func notifyChange(ctx context.Context, tx pgx.Tx, ch gridmap.Change) error {
	sort.Strings(ch.Codes)
	payload, _ := json.Marshal(ch)
	if len(payload) > 7900 {
		ch.Codes = nil
		payload, _ = json.Marshal(ch)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO layer_changes (layer_id, data_version, change, area)
		SELECT $1, $2, $3::json, CASE WHEN NOT $4 THEN NULL
			WHEN $5::float8[] IS NULL THEN ST_MakeEnvelope(-20037508.342789244, -20037508.342789244, 20037508.342789244, 20037508.342789244, 3857)
			ELSE ST_Transform(ST_MakeEnvelope(($5::float8[])[1], greatest(($5::float8[])[2], -85.05), ($5::float8[])[3], least(($5::float8[])[4], 85.05), 4326), 3857) END`,
		ch.Layer, ch.DataVersion, string(payload), ch.Kind != gridmap.ChangePeople, ch.BBox); err != nil {
		return fmt.Errorf("recording change: %w", err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, ChangeChannel, string(payload)); err != nil {
		return fmt.Errorf("announcing change: %w", err)
	}
	return nil
}

package postgres

import (
	"context"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb/encoding/wkb"
)

// coverageSQL reports, for each parent in $2, the gaps its children leave,
// the overlaps between its children and the parts of children outside it,
// each piece larger than $3 m2; gaps only when $4. $1 is the layer. The
// grids are those of the table named by the key (grid_versions, or
// draft_grids: see stateOf).
var coverageSQL = map[string]string{publishedTable: coverageSQLOf(publishedTable), draftTable: coverageSQLOf(draftTable)}

func coverageSQLOf(table string) string {
	// Every read of children goes through the table's parent index, under
	// one parent at a time: a CTE of all the children read more than once
	// is materialised without an index (a province's 26,000 parents each
	// scanned its 123,000 children), and joined with itself it paired
	// every two siblings whose boxes meet before the per-parent sums below
	// could rule their parent out (714,000 pairs at 40 districts, 9 s).
	children := func(alias, parent string) string {
		return table + ` ` + alias + ` WHERE ` + alias + `.layer_id = $1 AND ` + alias + `.valid_to IS NULL AND ` + alias + `.parent_code = ` + parent
	}
	return `
WITH
-- One union per parent answers most of the question: the gaps are what it
-- leaves of the parent; overlaps exist only where the children's areas add
-- up to more than the union's, parts outside only where the union spills.
-- Pairs of siblings and each child's part outside are looked at only
-- under the parents these sums flag.
-- The children's areas are summed in square degrees: a square degree is
-- at most 1.25e10 m2 anywhere (111,320 m of longitude at the equator by
-- 111,694 m of latitude at a pole), so an overlap of $3 m2 adds at least
-- $3 / 1.25e10 to the sum; parents within half of that are flagged too,
-- and the pieces found under them are measured on the spheroid.
m AS MATERIALIZED (
    SELECT p.code, p.geom AS pg, u.u, u.sum_a - ST_Area(u.u) AS overlap_deg2,
           CASE WHEN ST_Covers(p.geom, u.u) THEN 0
                ELSE ST_Area(ST_CollectionExtract(ST_Difference(u.u, p.geom), 3)::geography) END AS spill
    FROM ` + table + ` p
    CROSS JOIN LATERAL (SELECT coalesce(ST_Union(k.geom), 'SRID=4326;POLYGON EMPTY'::geometry) AS u,
                               coalesce(sum(ST_Area(k.geom)), 0) AS sum_a
                        FROM ` + children("k", "p.code") + `) u
    WHERE p.layer_id = $1 AND p.valid_to IS NULL AND p.code = ANY($2))
SELECT 'gap', ARRAY[m.code], ST_AsBinary(d.geom), ST_Area(d.geom::geography)
FROM m CROSS JOIN LATERAL ST_Dump(ST_CollectionExtract(ST_Difference(m.pg, m.u), 3)) d
WHERE $4 AND ST_Area(d.geom::geography) > $3
UNION ALL
SELECT 'overlap', ARRAY[i.a, i.b], ST_AsBinary(i.g), ST_Area(i.g::geography)
FROM m CROSS JOIN LATERAL (
    SELECT a.code AS a, b.code AS b, ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 3) AS g
    FROM ` + table + ` a JOIN ` + table + ` b ON b.layer_id = $1 AND b.valid_to IS NULL AND b.parent_code = m.code
      AND a.code < b.code AND a.geom && b.geom AND ST_Relate(a.geom, b.geom, '2********')
    WHERE a.layer_id = $1 AND a.valid_to IS NULL AND a.parent_code = m.code) i
WHERE m.overlap_deg2 * 1.25e10 > $3 / 2 AND ST_Area(i.g::geography) > $3
UNION ALL
SELECT 'outside', ARRAY[d.code, m.code], ST_AsBinary(d.g), ST_Area(d.g::geography)
FROM m CROSS JOIN LATERAL (
    SELECT k.code, ST_CollectionExtract(ST_Difference(k.geom, m.pg), 3) AS g
    FROM ` + children("k", "m.code") + ` AND NOT ST_Covers(m.pg, k.geom)) d
WHERE m.spill > $3 AND ST_Area(d.g::geography) > $3`
}

// CoverageOf reports gaps, overlaps and outside parts under parent, or under
// every parent of the layer when parent is "". Returns ENOTFOUND for an
// unknown layer or parent.
func (s *GridStore) CoverageOf(ctx context.Context, layer, parent string) (*gridmap.Coverage, error) {
	if err := s.checkLayer(ctx, layer); err != nil {
		return nil, err
	}
	var parents []string
	if parent != "" {
		if _, err := s.Grid(ctx, layer, parent); err != nil {
			return nil, err
		}
		parents = []string{parent}
	} else {
		rows, err := s.db.Pool.Query(ctx, `SELECT DISTINCT parent_code FROM grid_versions
			WHERE layer_id = $1 AND valid_to IS NULL AND parent_code IS NOT NULL`, layer)
		if err != nil {
			return nil, translate(err, "coverage")
		}
		if parents, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return nil, translate(err, "coverage")
		}
	}
	cov, err := coverageUnder(ctx, s.db.Pool, layer, parents, true)
	if err != nil {
		return nil, translate(err, "coverage")
	}
	return cov, nil
}

// coverageUnder reports coverage under the given parents as q sees the
// layer; gaps only when asked.
func coverageUnder(ctx context.Context, q querier, layer string, parents []string, gaps bool) (*gridmap.Coverage, error) {
	return coverageUnderIn(ctx, q, publishedTable, layer, parents, gaps)
}

// coverageUnderIn is coverageUnder over the grids of table.
func coverageUnderIn(ctx context.Context, q querier, table, layer string, parents []string, gaps bool) (*gridmap.Coverage, error) {
	cov := &gridmap.Coverage{Gaps: []gridmap.CoverageItem{}, Overlaps: []gridmap.CoverageItem{}, Outside: []gridmap.CoverageItem{}}
	rows, err := q.Query(ctx, coverageSQL[table], layer, parents, gridmap.ToleranceAreaM2, gaps)
	if err != nil {
		return nil, err
	}
	var kind string
	var codes []string
	var geom []byte
	var area float64
	_, err = pgx.ForEachRow(rows, []any{&kind, &codes, &geom, &area}, func() error {
		g, err := wkb.Unmarshal(geom)
		if err != nil {
			return err
		}
		item := gridmap.CoverageItem{Geometry: g, AreaM2: area, Codes: codes}
		switch kind {
		case "gap":
			cov.Gaps = append(cov.Gaps, item)
		case "overlap":
			cov.Overlaps = append(cov.Overlaps, item)
		default:
			cov.Outside = append(cov.Outside, item)
		}
		return nil
	})
	return cov, err
}

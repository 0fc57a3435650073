package postgres

import (
	"cmp"
	"context"
	"slices"

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
	// Children are read under one parent at a time, LATERAL to it: OFFSET
	// 0 keeps each subquery whole, so that PostgreSQL cannot fold it into a
	// join of the layer's children. A CTE of all the children, read more
	// than once, was materialised without an index (a province's 26,000
	// parents each scanned its 123,000 children); joined with itself, it
	// paired every two siblings whose boxes meet before the parent's sums
	// could rule them out (714,000 pairs and 9 s at 40 districts).
	// Each parent's sums come from grid_children_cover (migration 00029),
	// called in the select list of a scan of the parents: there PostgreSQL
	// prices every call (a LATERAL function scan is priced as if its first
	// answer were kept) and, for many parents, makes them in its parallel
	// workers. Made in a LATERAL subquery, every sum was the leader's, on
	// one core. OFFSET 0 keeps the call one per parent: folded into m, each
	// of the fields read would call it again.
	var draft string // grid_children_cover's choice of table
	switch table {
	case publishedTable:
		draft = "false"
	case draftTable:
		draft = "true"
	default:
		panic("coverage of unknown table " + table)
	}
	// children reads the children of parent; grid_children_cover reads
	// them the same way, and must agree.
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
m AS MATERIALIZED (
    SELECT x.code, x.pg, (x.c).u, (x.c).sum_a, (x.c).ua, (x.c).spill
    FROM (SELECT p.code, p.geom AS pg, grid_children_cover($1, p.code, p.geom, ` + draft + `) AS c
          FROM ` + table + ` p WHERE p.layer_id = $1 AND p.valid_to IS NULL AND p.code = ANY($2) OFFSET 0) x)
SELECT 'gap', ARRAY[m.code], ST_AsBinary(d.geom), ST_Area(d.geom::geography)
FROM m CROSS JOIN LATERAL ST_Dump(ST_CollectionExtract(ST_Difference(m.pg, m.u), 3)) d
WHERE $4 AND ST_Area(d.geom::geography) > $3
UNION ALL
SELECT 'overlap', ARRAY[a.code, b.code], ST_AsBinary(i.g), ST_Area(i.g::geography)
FROM m
CROSS JOIN LATERAL (SELECT a.code, a.geom FROM ` + children("a", "m.code") + ` OFFSET 0) a
CROSS JOIN LATERAL (SELECT b.code, b.geom FROM ` + children("b", "m.code") + `
    AND b.code > a.code AND b.geom && a.geom AND ST_Relate(a.geom, b.geom, '2********') OFFSET 0) b
CROSS JOIN LATERAL (SELECT ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 3) AS g) i
WHERE m.sum_a - m.ua > $3 AND ST_Area(i.g::geography) > $3
UNION ALL
SELECT 'outside', ARRAY[d.code, m.code], ST_AsBinary(d.g), ST_Area(d.g::geography)
FROM m CROSS JOIN LATERAL (
    SELECT k.code, ST_CollectionExtract(ST_Difference(k.geom, m.pg), 3) AS g
    FROM ` + children("k", "m.code") + ` AND NOT ST_Covers(m.pg, k.geom) OFFSET 0) d
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
func coverageUnder(ctx context.Context, q beginner, layer string, parents []string, gaps bool) (*gridmap.Coverage, error) {
	return coverageUnderIn(ctx, q, publishedTable, layer, parents, gaps)
}

// coverageParallelParents is how many parents make PostgreSQL's parallel
// workers worth their start: each starts cold (PostGIS loaded, the
// function compiled), a third of a second for two, where one parent's sums
// take under a millisecond. Measured over a district's 561 parents: 0.42
// to 0.50 s without workers, 0.79 to 0.85 s with two; over the 22,440 of
// 40 districts, 15 s without and 8 s with.
var coverageParallelParents = 2000

// coverageUnderIn is coverageUnder over the grids of table. Parallel
// workers are allowed only for many parents: the statement runs in a
// transaction of its own, or in a savepoint of q's rolled back to and
// released after it (it writes nothing), so that the setting is its alone.
// Its plan is made for each call: a plan kept by the connection would have
// been made for another number of parents.
func coverageUnderIn(ctx context.Context, q beginner, table, layer string, parents []string, gaps bool) (*gridmap.Coverage, error) {
	var tx pgx.Tx
	if outer, ok := q.(pgx.Tx); ok {
		if _, err := outer.Exec(ctx, `SAVEPOINT coverage_settings`); err != nil {
			return nil, err
		}
		defer outer.Exec(context.WithoutCancel(ctx), `ROLLBACK TO SAVEPOINT coverage_settings; RELEASE SAVEPOINT coverage_settings`)
		tx = outer
	} else {
		var err error
		if tx, err = q.Begin(ctx); err != nil {
			return nil, err
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
	}
	settings := `SET LOCAL plan_cache_mode = force_custom_plan`
	if len(parents) < coverageParallelParents {
		settings += `; SET LOCAL max_parallel_workers_per_gather = 0`
	}
	if _, err := tx.Exec(ctx, settings); err != nil {
		return nil, err
	}
	cov := &gridmap.Coverage{Gaps: []gridmap.CoverageItem{}, Overlaps: []gridmap.CoverageItem{}, Outside: []gridmap.CoverageItem{}}
	rows, err := tx.Query(ctx, coverageSQL[table], layer, parents, gridmap.ToleranceAreaM2, gaps)
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
	// In a fixed order, however PostgreSQL's workers shared the parents
	// out: by codes, the larger first.
	for _, items := range [][]gridmap.CoverageItem{cov.Gaps, cov.Overlaps, cov.Outside} {
		slices.SortStableFunc(items, func(a, b gridmap.CoverageItem) int {
			if c := slices.Compare(a.Codes, b.Codes); c != 0 {
				return c
			}
			return cmp.Compare(b.AreaM2, a.AreaM2)
		})
	}
	return cov, err
}

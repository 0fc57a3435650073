package postgres_test

import (
	"context"
	"testing"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/paulmach/orb/geojson"
)

// BenchmarkMoveEdge moves the edge between two neighbouring NYC tracts and
// back, fully validated and committed: one op is one changeset.
func BenchmarkMoveEdge(b *testing.B) {
	s := tractLayer(b)
	ctx := context.Background()
	a, nb, _ := neighbours(b, "1", 1)
	grown := geometryOf(b, `ST_Union(a.geom, ST_Intersection(b.geom,
		ST_Buffer(ST_LineInterpolatePoint(ST_LineMerge(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))), 0.5), 0.0003)))`, a, nb)
	orig, err := s.grids.Grid(ctx, "tracts", a)
	if err != nil {
		b.Fatal(err)
	}
	shapes := []*geojson.Geometry{grown, geojson.NewGeometry(orig.Geometry)}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		res, err := s.grids.ApplyChangeset(ctx, "tracts", &gridmap.Changeset{Operations: []gridmap.Operation{
			{Op: gridmap.OpMoveEdge, Code: a, Geometry: shapes[i%2]},
		}})
		if err != nil || !res.Applied {
			b.Fatalf("move_edge: %v %+v", err, res)
		}
		i++
	}
}

// BenchmarkMoveEdgeDryRun checks the same move_edge without writing it,
// as the editor does at every change of its draft.
func BenchmarkMoveEdgeDryRun(b *testing.B) {
	s := tractLayer(b)
	ctx := context.Background()
	a, nb, _ := neighbours(b, "1", 3)
	grown := geometryOf(b, `ST_Union(a.geom, ST_Intersection(b.geom,
		ST_Buffer(ST_LineInterpolatePoint(ST_LineMerge(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))), 0.5), 0.0003)))`, a, nb)
	b.ReportAllocs()
	for b.Loop() {
		res, err := s.grids.ApplyChangeset(ctx, "tracts", &gridmap.Changeset{DryRun: true, Operations: []gridmap.Operation{
			{Op: gridmap.OpMoveEdge, Code: a, Geometry: grown},
		}})
		if err != nil || res.Applied || len(res.Problems) > 0 || len(res.Impact.Grids) != 2 {
			b.Fatalf("dry run: %v %+v", err, res)
		}
	}
}

// BenchmarkMoveEdgeBaseline is the same edit written blind: the two new
// geometries, computed beforehand, stored with one UPDATE each; no
// validation, no history, no notification.
func BenchmarkMoveEdgeBaseline(b *testing.B) {
	tractLayer(b)
	db := pgtest.Shared(b)
	ctx := context.Background()
	a, nb, _ := neighbours(b, "1", 2)
	var shapes [2][2][]byte // [grown, original][a, nb]
	if err := db.Pool.QueryRow(ctx, `WITH x AS (SELECT a.geom AS ag, b.geom AS bg, ST_Intersection(b.geom,
			ST_Buffer(ST_LineInterpolatePoint(ST_LineMerge(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))), 0.5), 0.0003)) AS bite
			FROM grids a, grids b WHERE a.layer_id = 'tracts' AND b.layer_id = 'tracts' AND a.code = $1 AND b.code = $2)
		SELECT ST_AsBinary(ST_Multi(ST_Union(ag, bite))), ST_AsBinary(ST_Multi(ST_CollectionExtract(ST_Difference(bg, bite), 3))),
		       ST_AsBinary(ag), ST_AsBinary(bg) FROM x`, a, nb).Scan(&shapes[0][0], &shapes[0][1], &shapes[1][0], &shapes[1][1]); err != nil {
		b.Fatal(err)
	}
	// Blind: past the rule that a version is never changed in place,
	// which the database keeps with a trigger, off while this runs.
	if _, err := db.Pool.Exec(ctx, `ALTER TABLE grid_versions DISABLE TRIGGER grid_versions_unchanged`); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if _, err := db.Pool.Exec(context.Background(), `ALTER TABLE grid_versions ENABLE TRIGGER grid_versions_unchanged`); err != nil {
			b.Error(err)
		}
	})
	write := func(shape [2][]byte) {
		tx, err := db.Pool.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for k, code := range []string{a, nb} {
			if _, err := tx.Exec(ctx, `UPDATE grid_versions SET geom = ST_GeomFromWKB($2, 4326) WHERE layer_id = 'tracts' AND code = $1 AND valid_to IS NULL`,
				code, shape[k]); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		write(shapes[i%2])
		i++
	}
	if i%2 == 1 {
		write(shapes[1]) // the tracts as they were, for the benchmarks after this one
	}
}

// BenchmarkCoverageNYC reports coverage for all 2,165 tracts under their
// five boroughs.
func BenchmarkCoverageNYC(b *testing.B) {
	s := tractLayer(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.grids.CoverageOf(context.Background(), "tracts", ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCoverageNYCBaseline is the textbook query: union every borough's
// tracts and difference it from the borough, gaps only.
func BenchmarkCoverageNYCBaseline(b *testing.B) {
	tractLayer(b)
	db := pgtest.Shared(b)
	b.ReportAllocs()
	for b.Loop() {
		var n int
		if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM (
			SELECT ST_Difference(p.geom, ST_Union(c.geom)) FROM grids p JOIN grids c ON c.layer_id = p.layer_id AND c.parent_code = p.code
			WHERE p.layer_id = 'tracts' GROUP BY p.code, p.geom) x`).Scan(&n); err != nil {
			b.Fatal(err)
		}
	}
}

package postgres_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// benchPoints returns random points over the NYC tract layer's bounding box.
func benchPoints(b *testing.B, n int) [][2]float64 {
	var minX, minY, maxX, maxY float64
	if err := pgtest.Shared(b).Pool.QueryRow(context.Background(), `SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
		FROM (SELECT ST_Extent(geom)::geometry e FROM grids WHERE layer_id = 'tracts') x`).Scan(&minX, &minY, &maxX, &maxY); err != nil {
		b.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(5, 6))
	pts := make([][2]float64, n)
	for i := range pts {
		pts[i] = [2]float64{minX + rnd.Float64()*(maxX-minX), minY + rnd.Float64()*(maxY-minY)}
	}
	return pts
}

// BenchmarkLocatorNYC answers random points over New York from the
// in-memory index through the Locator, chain, people and co-owners
// within 30 m included, on one goroutine.
func BenchmarkLocatorNYC(b *testing.B) {
	tractLayer(b)
	loc := postgres.NewLocator(pgtest.Shared(b))
	ctx := context.Background()
	if err := loc.Load(ctx); err != nil {
		b.Fatal(err)
	}
	pts := benchPoints(b, 100_000)
	var ans gridmap.LookupAnswer
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p := pts[i%len(pts)]
		if err := loc.Lookup(ctx, gridmap.LookupQuery{Lon: p[0], Lat: p[1], Layer: "tracts"}, &ans); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkLocatorNYCPostGIS is the baseline: the same points answered by
// PostGIS, one prepared ST_Covers query on the GiST index per point,
// finest grid only (no chain, no co-owners).
func BenchmarkLocatorNYCPostGIS(b *testing.B) {
	tractLayer(b)
	db := pgtest.Shared(b)
	ctx := context.Background()
	pts := benchPoints(b, 100_000)
	// A fair baseline plans on current statistics.
	if _, err := db.Pool.Exec(ctx, `ANALYZE grid_versions`); err != nil {
		b.Fatal(err)
	}
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	const q = `SELECT code FROM grids WHERE layer_id = 'tracts' AND geom && ST_SetSRID(ST_MakePoint($1, $2), 4326)
		AND ST_Covers(geom, ST_SetSRID(ST_MakePoint($1, $2), 4326)) ORDER BY level = 'tract' DESC, code LIMIT 1`
	var code string
	i := 0
	for b.Loop() {
		p := pts[i%len(pts)]
		err := conn.QueryRow(ctx, q, p[0], p[1]).Scan(&code)
		if err != nil && err.Error() != "no rows in result set" {
			b.Fatal(err)
		}
		i++
	}
}

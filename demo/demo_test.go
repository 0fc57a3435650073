package demo_test

import (
	"context"
	"regexp"
	"testing"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/demo"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/paulmach/orb"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func generate(t *testing.T) *demo.District {
	t.Helper()
	d, err := demo.Generate(demo.DefaultSeed)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestGenerateShape(t *testing.T) {
	d := generate(t)
	perLevel := map[string]int{}
	byCode := map[string]*gridmap.Feature{}
	layer := d.Layers[0]
	re := regexp.MustCompile(layer.CodePattern)
	gbt := map[string]int{"district": 6, "street": 9, "community": 12, "grid": 15, "microgrid": 17}
	checker := geo.NewChecker()
	for _, f := range d.Grids[demo.LayerID] {
		perLevel[f.Level]++
		if !re.MatchString(f.Code) || len(f.Code) != gbt[f.Level] {
			t.Errorf("%s code %q is not a GB/T 30428 code of %d digits", f.Level, f.Code, gbt[f.Level])
		}
		if f.Parent != "" {
			p := byCode[f.Parent]
			if p == nil {
				t.Fatalf("%s comes before its parent %s", f.Code, f.Parent)
			}
			if f.Code[:len(p.Code)] != p.Code {
				t.Errorf("code %s does not extend its parent's %s", f.Code, p.Code)
			}
		}
		if f.Name == "" {
			t.Errorf("%s has no name", f.Code)
		}
		if (f.Level == "grid" || f.Level == "microgrid") && len(f.People) == 0 {
			t.Errorf("%s %s has nobody responsible", f.Level, f.Code)
		}
		mp := f.Geometry.(orb.MultiPolygon)
		if iv := checker.Check(mp); iv != nil {
			t.Errorf("%s has invalid geometry: %s", f.Code, iv.Reason)
		}
		if len(mp) != 1 {
			t.Errorf("%s comes in %d pieces", f.Code, len(mp))
		}
		byCode[f.Code] = f
	}
	minimum := map[string]int{"district": 1, "street": 8, "community": 40, "grid": 400, "microgrid": 2000}
	for lv, n := range minimum {
		if perLevel[lv] < n {
			t.Errorf("%d grids at level %s, want at least %d", perLevel[lv], lv, n)
		}
	}
	// A real place in China: the district sits west of Hangzhou's centre.
	c := byCode[demo.CountyCode].Geometry.Bound().Center()
	if c[0] < 119.9 || c[0] > 120.3 || c[1] < 30.1 || c[1] > 30.4 {
		t.Errorf("district centred at %v, not in Hangzhou", c)
	}
	if n := len(d.Grids[demo.PoliceLayerID]); n < 20 {
		t.Errorf("%d police grids", n)
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, b := generate(t), generate(t)
	for _, id := range []string{demo.LayerID, demo.PoliceLayerID} {
		for i, f := range a.Grids[id] {
			g := b.Grids[id][i]
			if f.Code != g.Code || f.Name != g.Name || !orb.Equal(f.Geometry, g.Geometry) {
				t.Fatalf("%s feature %d differs between two runs with the same seed", id, i)
			}
		}
	}
}

// TestDemoNestsAndTiles loads the demo into PostGIS and checks there that
// children tile their parents (no gaps, no overlaps, nothing outside) and
// that police beats cut across street boundaries.
func TestDemoNestsAndTiles(t *testing.T) {
	db := pgtest.Shared(t)
	ctx := context.Background()
	layers := postgres.NewLayerStore(db)
	results, err := demo.Load(ctx, layers, postgres.NewGridStore(db), generate(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if len(r.Rejected) != 0 || r.Created != r.Read {
			t.Errorf("layer %s: %+v", r.Layer, r)
		}
	}
	if loaded, err := demo.Loaded(ctx, layers); err != nil || !loaded {
		t.Errorf("Loaded() = %v, %v after loading", loaded, err)
	}

	// For each parent: area of the gaps and overlaps between it and its
	// children, relative to its area.
	const coverage = `
WITH kids AS (
    SELECT p.layer_id, p.code, p.geom AS parent, ST_Union(c.geom) AS u, sum(ST_Area(c.geom::geography)) AS child_area
    FROM grids p JOIN grids c ON c.layer_id = p.layer_id AND c.parent_code = p.code
    WHERE p.layer_id = $1
    GROUP BY p.layer_id, p.code, p.geom)
SELECT count(*),
       max(ST_Area(ST_SymDifference(parent, u)::geography) / ST_Area(parent::geography)),
       max(abs(child_area - ST_Area(parent::geography)) / ST_Area(parent::geography))
FROM kids`
	for _, id := range []string{demo.LayerID, demo.PoliceLayerID} {
		var parents int
		var gap, overlap float64
		if err := db.Pool.QueryRow(ctx, coverage, id).Scan(&parents, &gap, &overlap); err != nil {
			t.Fatal(err)
		}
		if parents == 0 {
			t.Fatalf("%s: no parents with children", id)
		}
		if gap > 1e-9 || overlap > 1e-9 {
			t.Errorf("%s: worst parent has %.2g of its area in gaps or outside, children add up to %.2g off its area", id, gap, overlap)
		}
	}

	var crossing int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT b.code FROM grids b JOIN grids s
		ON ST_Intersects(b.geom, s.geom) AND ST_Area(ST_Intersection(b.geom, s.geom)::geography) > 1000
		WHERE b.layer_id = $1 AND b.level = 'beat' AND s.layer_id = $2 AND s.level = 'street'
		GROUP BY b.code HAVING count(*) > 1) crossing`, demo.PoliceLayerID, demo.LayerID).Scan(&crossing); err != nil {
		t.Fatal(err)
	}
	if crossing == 0 {
		t.Error("no police beat crosses a street boundary; they should not follow the streets")
	}
}

package geo_test

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/gridmap/gridmap/demo"
	"github.com/gridmap/gridmap/geo"
)

// TestIndexMemory builds the index of the demo district and of every New
// York boundary layer and checks that it takes at most twice the bytes of
// the raw coordinates (16 bytes a vertex).
func TestIndexMemory(t *testing.T) {
	dir := filepath.Join("..", "..", "shared", "data", "nyc")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("NYC data not found (%v): the memory check needs ../shared/data/nyc", err)
	}
	var inputs []geo.LayerInput
	d, err := demo.Generate(1)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range d.Layers {
		in := geo.LayerInput{ID: l.ID, Levels: l.Levels, ToleranceM: 30}
		for _, f := range d.Grids[l.ID] {
			mp, err := geo.Polygonal(f.Geometry)
			if err != nil {
				t.Fatal(err)
			}
			in.Grids = append(in.Grids, geo.GridInput{Code: f.Code, Name: f.Name, Level: f.Level, Parent: f.Parent, Geometry: mp, People: f.People})
		}
		inputs = append(inputs, in)
	}
	nyc := geo.LayerInput{ID: "nyc", Levels: []string{"borough", "nta", "tract"}, ToleranceM: 30}
	files := []struct {
		file   string
		fields geo.FieldMap
		layer  *geo.LayerInput
	}{
		{"L1_boroughs.geojson", geo.FieldMap{Code: "borocode", Name: "boroname", DefaultLevel: "borough"}, &nyc},
		{"L2_nta2010.geojson", geo.FieldMap{Code: "ntacode", Name: "ntaname", Parent: "borocode", DefaultLevel: "nta"}, &nyc},
		{"L3_tracts2010.geojson", geo.FieldMap{Code: "boroct2010", Name: "ctlabel", Parent: "ntacode", DefaultLevel: "tract"}, &nyc},
		{"dept_community_districts.geojson", geo.FieldMap{Code: "borocd", DefaultLevel: "district"}, &geo.LayerInput{ID: "cd", Levels: []string{"district"}}},
		{"dept_police_precincts_77.geojson", geo.FieldMap{Code: "precinct", DefaultLevel: "precinct"}, &geo.LayerInput{ID: "precincts", Levels: []string{"precinct"}}},
	}
	for _, f := range files {
		r, err := os.Open(filepath.Join(dir, f.file))
		if err != nil {
			t.Fatal(err)
		}
		fr := geo.NewFeatureReader(r, f.fields)
		for {
			feat, err := fr.Next()
			if err != nil {
				break
			}
			mp, err := geo.Polygonal(feat.Geometry)
			if err != nil {
				t.Fatalf("%s: %v", f.file, err)
			}
			f.layer.Grids = append(f.layer.Grids, geo.GridInput{Code: feat.Code, Name: feat.Name, Level: feat.Level, Parent: feat.Parent, Geometry: mp})
		}
		r.Close()
		if f.layer != &nyc {
			inputs = append(inputs, *f.layer)
		}
	}
	inputs = append(inputs, nyc)

	vertices := 0
	for _, in := range inputs {
		for _, g := range in.Grids {
			for _, p := range g.Geometry {
				for _, r := range p {
					vertices += len(r)
				}
			}
		}
	}
	raw := uint64(vertices) * 16

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var layers []*geo.LayerIndex
	for _, in := range inputs {
		l, err := geo.BuildLayerIndex(in, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	ix := geo.NewIndex(layers...)
	runtime.GC()
	runtime.ReadMemStats(&after)
	used := after.HeapAlloc - before.HeapAlloc
	runtime.KeepAlive(ix)
	runtime.KeepAlive(inputs)
	t.Logf("%d layers, %d vertices: raw coordinates %.1f MB, index %.1f MB (%.2fx)",
		len(layers), vertices, float64(raw)/1e6, float64(used)/1e6, float64(used)/float64(raw))
	if used > 2*raw {
		t.Errorf("index takes %d bytes, more than twice the %d bytes of raw coordinates", used, raw)
	}
}

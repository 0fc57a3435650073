package geo

import "testing"

// BenchmarkRebuildNYC rebuilds the NYC tract index after an edit to one
// tract: every other tract's pieces come from the index before it.
func BenchmarkRebuildNYC(b *testing.B) {
	l, in := nycLayer(b)
	again := LayerInput{ID: in.ID, Levels: in.Levels, ToleranceM: in.ToleranceM}
	for i, g := range in.Grids {
		if i > 0 {
			g.Geometry = nil
		}
		g.VersionID = l.Grids[i].VersionID
		again.Grids = append(again.Grids, g)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildLayerIndex(again, 0, l); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildNYC is its baseline: the same index built from the
// tracts' geometry.
func BenchmarkBuildNYC(b *testing.B) {
	_, in := nycLayer(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildLayerIndex(in, 0, nil); err != nil {
			b.Fatal(err)
		}
	}
}

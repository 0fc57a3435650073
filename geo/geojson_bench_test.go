package geo

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkFeatureReader decodes the 4.8 MB NYC tract file.
func BenchmarkFeatureReader(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("..", "..", "shared", "data", "nyc", "L3_tracts2010.geojson"))
	if err != nil {
		b.Skipf("NYC data not found: %v", err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		fr := NewFeatureReader(bytes.NewReader(data), FieldMap{Code: "boroct2010"})
		n := 0
		for {
			if _, err := fr.Next(); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 2165 {
			b.Fatalf("%d features", n)
		}
	}
}

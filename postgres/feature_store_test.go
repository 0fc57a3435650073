package postgres_test

import (
	"context"
	"encoding/json"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestFeaturesStreamInFlatMemory pages through a collection of 100,000
// grids, 10,000 a page: the features leave PostgreSQL row by row, so half
// way through a page of some 9 MB what the process holds has grown by far
// less than the page.
func TestFeaturesStreamInFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 100,000 grids")
	}
	ctx := context.Background()
	db := pgtest.Shared(t)
	const layer, n = "features-100k", 100_000
	if _, err := postgres.NewLayerStore(db).PutLayer(ctx, &gridmap.Layer{ID: layer, Kind: gridmap.KindDepartmental, Levels: []string{"cell"}}); err != nil {
		t.Fatal(err)
	}
	// Written directly: an import's checks are not what is measured here.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO grid_versions (layer_id, code, version, name, level, geom, attributes)
		SELECT $1, 'C' || lpad(i::text, 6, '0'), 1, 'cell ' || i, 'cell',
		       ST_Multi(ST_Buffer(ST_MakePoint(140 + (i % 300) * 0.001, 20 + (i / 300) * 0.001), 0.0004, 10)),
		       jsonb_build_object('households', i % 97)
		FROM generate_series(1, $2) i
		ON CONFLICT DO NOTHING`, layer, n); err != nil {
		t.Fatal(err)
	}
	store := postgres.NewFeatureStore(db)
	var streamed, features int64
	var grewMid uint64
	for offset := 0; offset < n; offset += gridmap.MaxFeaturesPage {
		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		inPage := 0
		err := store.Features(ctx, &gridmap.FeatureQuery{Layer: layer, Limit: gridmap.MaxFeaturesPage, Offset: offset},
			func(matched int64) error {
				if matched != n {
					t.Errorf("matched %d, want %d", matched, n)
				}
				return nil
			},
			func(f []byte) error {
				streamed += int64(len(f))
				features++
				if inPage++; inPage == gridmap.MaxFeaturesPage/2 && offset == 0 {
					var mid runtime.MemStats
					runtime.GC()
					runtime.ReadMemStats(&mid)
					if mid.HeapAlloc > before.HeapAlloc {
						grewMid = mid.HeapAlloc - before.HeapAlloc
					}
					if !json.Valid(f) {
						t.Errorf("not JSON: %s", f)
					}
				}
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
	}
	if features != n {
		t.Fatalf("streamed %d features, want %d", features, n)
	}
	page := streamed / (n / gridmap.MaxFeaturesPage)
	t.Logf("streamed %d features, %.1f MB (%.1f MB a page); live heap half way through the first page grew %.2f MB",
		features, float64(streamed)/1e6, float64(page)/1e6, float64(grewMid)/1e6)
	if grewMid > uint64(page)/4 {
		t.Errorf("half way through a page of %.1f MB the live heap grew %.1f MB: the page is being held", float64(page)/1e6, float64(grewMid)/1e6)
	}
}

// BenchmarkFeaturesNYC pages through the 2,165 NYC tracts 1,000 at a time
// as OGC API items: counted, read as WKB and written as GeoJSON here.
// BenchmarkFeaturesNYCAsGeoJSON is the baseline, the way pg_featureserv
// serves a table: PostGIS writes each geometry (ST_AsGeoJSON), the
// properties are scanned and encoded with encoding/json.
func BenchmarkFeaturesNYC(b *testing.B) {
	db := pgtest.Shared(b)
	pgtest.LoadNYCHierarchy(b, db, "nyc3")
	store := postgres.NewFeatureStore(db)
	ctx := context.Background()
	b.ReportAllocs()
	var bytes int64
	for b.Loop() {
		n := 0
		for offset := 0; offset < 2165; offset += 1000 {
			if err := store.Features(ctx, &gridmap.FeatureQuery{Layer: "nyc3", Level: "tract", Limit: 1000, Offset: offset},
				func(int64) error { return nil },
				func(f []byte) error { n++; bytes += int64(len(f)); _, err := io.Discard.Write(f); return err }); err != nil {
				b.Fatal(err)
			}
		}
		if n != 2165 {
			b.Fatalf("%d tracts", n)
		}
	}
	b.ReportMetric(float64(bytes)/float64(b.N)/1e6, "MB/op")
}

func BenchmarkFeaturesNYCAsGeoJSON(b *testing.B) {
	db := pgtest.Shared(b)
	pgtest.LoadNYCHierarchy(b, db, "nyc3")
	ctx := context.Background()
	type feature struct {
		Type       string          `json:"type"`
		ID         string          `json:"id"`
		Geometry   json.RawMessage `json:"geometry"`
		Properties map[string]any  `json:"properties"`
	}
	b.ReportAllocs()
	var bytes int64
	for b.Loop() {
		n := 0
		for offset := 0; offset < 2165; offset += 1000 {
			rows, err := db.Pool.Query(ctx, `SELECT ST_AsGeoJSON(geom, 9), code, name, level, parent_code, version, valid_from, attributes
				FROM grid_versions WHERE layer_id = $1 AND valid_to IS NULL AND level = $2 ORDER BY code LIMIT 1000 OFFSET $3`, "nyc3", "tract", offset)
			if err != nil {
				b.Fatal(err)
			}
			for rows.Next() {
				var geom, code, name, level string
				var parent *string
				var version int
				var validFrom time.Time
				var attrs map[string]any
				if err := rows.Scan(&geom, &code, &name, &level, &parent, &version, &validFrom, &attrs); err != nil {
					b.Fatal(err)
				}
				props := map[string]any{"code": code, "name": name, "level": level, "parent": parent, "version": version, "valid_from": validFrom}
				for k, v := range attrs {
					props[k] = v
				}
				out, err := json.Marshal(feature{Type: "Feature", ID: code, Geometry: json.RawMessage(geom), Properties: props})
				if err != nil {
					b.Fatal(err)
				}
				bytes += int64(len(out))
				n++
			}
			if err := rows.Err(); err != nil {
				b.Fatal(err)
			}
		}
		if n != 2165 {
			b.Fatalf("%d tracts", n)
		}
	}
	b.ReportMetric(float64(bytes)/float64(b.N)/1e6, "MB/op")
}

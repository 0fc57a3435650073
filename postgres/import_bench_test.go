package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb/geojson"
)

var tractFields = geo.FieldMap{Code: "boroct2010", Name: "ctlabel", DefaultLevel: "tract"}

var benchLayers atomic.Int64

// benchLayer makes a new single-level layer for one benchmark iteration.
func benchLayer(b *testing.B, db *postgres.DB) string {
	id := fmt.Sprintf("bench-%d", benchLayers.Add(1))
	if _, err := postgres.NewLayerStore(db).PutLayer(context.Background(), &gridmap.Layer{ID: id, Levels: []string{"tract"}}); err != nil {
		b.Fatal(err)
	}
	return id
}

func openTracts(b *testing.B) *os.File {
	f, err := os.Open(filepath.Join(pgtest.NYCDir(b), "L3_tracts2010.geojson"))
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkImportTracts imports the 2,165 NYC tracts the way gridmap does:
// streamed, every geometry checked with GEOS, COPY into staging, one
// transaction.
func BenchmarkImportTracts(b *testing.B) {
	db := pgtest.Shared(b)
	store := postgres.NewGridStore(db)
	b.ReportAllocs()
	for b.Loop() {
		layer := benchLayer(b, db)
		f := openTracts(b)
		res, err := store.Import(context.Background(), layer, geo.NewFeatureReader(f, tractFields), gridmap.ImportOptions{MakeValid: true})
		f.Close()
		if err != nil || res.Created != 2165 {
			b.Fatalf("import: %v %+v", err, res)
		}
	}
}

// BenchmarkImportTractsRowByRow is the baseline: the same features written
// with one INSERT ... ST_GeomFromGeoJSON each in one transaction, with no
// checks at all.
func BenchmarkImportTractsRowByRow(b *testing.B) {
	db := pgtest.Shared(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		layer := benchLayer(b, db)
		f := openTracts(b)
		fr := geo.NewFeatureReader(f, tractFields)
		err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			for {
				feat, err := fr.Next()
				if errors.Is(err, io.EOF) {
					return nil
				} else if err != nil {
					return err
				}
				g, _ := json.Marshal(geojson.NewGeometry(feat.Geometry))
				if _, err := tx.Exec(ctx, `INSERT INTO grid_versions (layer_id, code, version, name, level, geom)
					VALUES ($1, $2, 1, $3, 'tract', ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON($4), 4326)))`,
					layer, feat.Code, feat.Name, string(g)); err != nil {
					return err
				}
			}
		})
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
}

package postgres_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/gridmap/gridmap/tiles"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/mvt"
	"github.com/paulmach/orb/geojson"
	"github.com/paulmach/orb/planar"
)

// blockTestTiles are tiles over New York from z14 to z16: the middle of the
// city at 14, and lower Manhattan and the shore of Brooklyn deeper.
func blockTestTiles() []tiles.Tile {
	list := cityTiles(14)
	for _, z := range []int{15, 16} {
		for _, box := range [][4]float64{{-74.02, 40.70, -73.995, 40.715}, {-74.04, 40.57, -74.0, 40.59}} {
			x0, y0, x1, y1 := tiles.Covering(z, box, 0)
			for x := x0; x <= x1; x++ {
				for y := y0; y <= y1; y++ {
					list = append(list, tiles.Tile{Z: z, X: x, Y: y})
				}
			}
		}
	}
	return list
}

type tileFeature struct {
	props string
	geom  orb.Geometry
}

func features(l *mvt.Layer) map[string]tileFeature {
	out := map[string]tileFeature{}
	if l == nil {
		return out
	}
	for _, f := range l.Features {
		keys := make([]string, 0, len(f.Properties))
		for k := range f.Properties {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		props := ""
		for _, k := range keys {
			props += fmt.Sprintf("%s=%v;", k, f.Properties[k])
		}
		out[fmt.Sprint(f.Properties["code"])] = tileFeature{props, f.Geometry}
	}
	return out
}

// order lists the codes of an MVT layer's features in their order.
func order(l *mvt.Layer) []string {
	var out []string
	if l != nil {
		for _, f := range l.Features {
			out = append(out, fmt.Sprint(f.Properties["code"]))
		}
	}
	return out
}

// TestBlockVersionsMatchPostGIS: the version of every tile of a block, and
// of the tiles around it, is the one PostGIS reads, with changes covering
// the block and its margin, covering the block only, and meeting one
// corner of it.
func TestBlockVersionsMatchPostGIS(t *testing.T) {
	ctx := context.Background()
	db := pgtest.Shared(t)
	s := stores{postgres.NewLayerStore(db), postgres.NewGridStore(db)}
	if _, err := s.layers.PutLayer(ctx, &gridmap.Layer{ID: "blkv", Levels: []string{"district"}}); err != nil {
		t.Fatal(err)
	}
	if res, err := importString(s, "blkv", collection(feature("V", "district", "", rect(126.45, 36.45, 126.55, 36.55))), gridmap.ImportOptions{}); err != nil || len(res.Rejected) > 0 {
		t.Fatalf("import: %v %+v", err, res)
	}
	bx, by, _, _ := tiles.Covering(postgres.BlockZoom, [4]float64{126.5, 36.5, 126.5, 36.5}, 0)
	e := tiles.Tile{Z: postgres.BlockZoom, X: bx, Y: by}.Envelope()
	w := e[2] - e[0]
	for _, c := range []struct {
		version        int64
		x0, y0, x1, y1 float64
	}{
		{1000, e[0] - w/32, e[1] - w/32, e[2] + w/32, e[3] + w/32}, // the block and its margin
		{1001, e[0], e[1], e[2], e[3]},                             // the block
		{1002, e[0] + w/8, e[1] + w/8, e[0] + w/4, e[1] + w/4},     // one corner
		{999, e[0] - w, e[1] - w, e[2] + w, e[3] + w},              // older, and everywhere
	} {
		if _, err := db.Pool.Exec(ctx, `INSERT INTO layer_changes (layer_id, data_version, area) VALUES ('blkv', $1, ST_MakeEnvelope($2, $3, $4, $5, 3857))`,
			c.version, c.x0, c.y0, c.x1, c.y1); err != nil {
			t.Fatal(err)
		}
	}
	sql := postgres.NewTileStore(db)
	mem := postgres.NewTileStore(db)
	mem.KeepTileBlocks(64 << 20)
	versions := map[string]int{}
	for z := 14; z <= 16; z++ {
		shift := z - postgres.BlockZoom
		// The block's tiles and two rings of tiles around it.
		for x := (bx << shift) - 2; x <= (bx+1)<<shift+1; x++ {
			for y := (by << shift) - 2; y <= (by+1)<<shift+1; y++ {
				tl := tiles.Tile{Z: z, X: x, Y: y}
				_, want := render(t, sql, "blkv", tl)
				_, got := render(t, mem, "blkv", tl)
				if got.Version != want.Version {
					t.Errorf("tile %s: version %s, PostGIS %s", tl, got.Version, want.Version)
				}
				versions[want.Version]++
			}
		}
	}
	if len(versions) < 3 {
		t.Errorf("the tiles hold only the versions %v", versions)
	}
	t.Logf("versions over %d tiles: %v", func() (n int) {
		for _, c := range versions {
			n += c
		}
		return n
	}(), versions)
}

// TestBlockTilesMatchPostGIS draws tiles from blocks and compares them
// with the same tiles rendered by PostGIS (rawGridTileSQL): the same grids
// and labels with the same properties, the same version, and geometry
// that differs by no more than rounding.
func TestBlockTilesMatchPostGIS(t *testing.T) {
	db := pgtest.Shared(t)
	pgtest.LoadNYCHierarchy(t, db, "nyc3")
	sql := postgres.NewTileStore(db)
	mem := postgres.NewTileStore(db)
	mem.KeepTileBlocks(256 << 20)
	list := blockTestTiles()
	var grids, labels int
	var areaDiff, area float64
	for _, tl := range list {
		want, wantOut := render(t, sql, "nyc3", tl)
		got, gotOut := render(t, mem, "nyc3", tl)
		if gotOut.Version != wantOut.Version {
			t.Errorf("tile %s: version %s, PostGIS %s", tl, gotOut.Version, wantOut.Version)
		}
		for _, name := range []string{"grids", "labels"} {
			// In the same order (by depth, then code).
			if w, g := order(layerNamed(want, name)), order(layerNamed(got, name)); !slices.Equal(w, g) {
				t.Errorf("tile %s, %s in the order %v, PostGIS %v", tl, name, g, w)
			}
			w, g := features(layerNamed(want, name)), features(layerNamed(got, name))
			for code, wf := range w {
				gf, ok := g[code]
				if !ok {
					t.Errorf("tile %s, %s: %s is missing (PostGIS draws it)", tl, name, code)
					continue
				}
				if gf.props != wf.props {
					t.Errorf("tile %s, %s: %s has %s, PostGIS %s", tl, name, code, gf.props, wf.props)
				}
				switch wg := wf.geom.(type) {
				case orb.Point:
					gp, ok := gf.geom.(orb.Point)
					if !ok || math.Abs(gp[0]-wg[0]) > 1 || math.Abs(gp[1]-wg[1]) > 1 {
						t.Errorf("tile %s: label %s at %v, PostGIS %v", tl, code, gf.geom, wg)
					}
					labels++
				default:
					wa, ga := planar.Area(wf.geom), planar.Area(gf.geom)
					areaDiff += math.Abs(wa - ga)
					area += wa
					// Rounding moves each vertex half a unit at most.
					if d := math.Abs(wa - ga); d > 0.01*wa+2*planar.Length(wf.geom) {
						t.Errorf("tile %s: grid %s covers %.0f units, PostGIS %.0f", tl, code, ga, wa)
					}
					if gb, wb := gf.geom.Bound(), wf.geom.Bound(); math.Abs(gb.Min[0]-wb.Min[0]) > 1 || math.Abs(gb.Max[0]-wb.Max[0]) > 1 ||
						math.Abs(gb.Min[1]-wb.Min[1]) > 1 || math.Abs(gb.Max[1]-wb.Max[1]) > 1 {
						t.Errorf("tile %s: grid %s spans %v, PostGIS %v", tl, code, gb, wb)
					}
					grids++
				}
			}
			for code := range g {
				if _, ok := w[code]; !ok {
					t.Errorf("tile %s, %s: %s is drawn, PostGIS does not draw it", tl, name, code)
				}
			}
		}
	}
	n, bytes := mem.TileBlocks()
	t.Logf("%d tiles from %d blocks (%.1f MB): %d grids, %d labels; areas differ by %.4f%% in all", len(list), n, float64(bytes)/(1<<20), grids, labels, 100*areaDiff/area)
	if grids == 0 || labels == 0 {
		t.Fatal("no grid or label was compared")
	}
}

// countingInvalidator passes invalidations on to a tile cache and counts
// the boundary changes noticed, once their tiles and blocks are dropped.
type countingInvalidator struct {
	cache   *tiles.Cache
	changes atomic.Int64
}

func (c *countingInvalidator) Invalidate(tileset string, boxes [][4]float64) int {
	n := c.cache.Invalidate(tileset, boxes)
	if tileset == "blk" {
		c.changes.Add(1)
	}
	return n
}

func (c *countingInvalidator) InvalidateAll() { c.cache.InvalidateAll() }

// TestBlockTilesUnderEdits has eight clients ask for tiles from z14 to z16
// drawn from blocks (on a budget smaller than the blocks they need, so
// blocks are pushed out too),
// through the tile cache, on a pool of two connections, while an editor
// renames the grids one after another. Once an edit's notice is handled,
// no client gets a tile without it, from the cache, a block or a render
// under way; each rename reaches the tiles; a tile always holds every grid.
func TestBlockTilesUnderEdits(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db := pgtest.SharedWith(t, postgres.Options{MaxConns: 2})
	s := stores{postgres.NewLayerStore(db), postgres.NewGridStore(db)}
	if _, err := s.layers.PutLayer(ctx, &gridmap.Layer{ID: "blk", Levels: []string{"district", "grid"}}); err != nil {
		t.Fatal(err)
	}
	// 4 x 4 grids across the edge between two blocks, at lon 125.5078125.
	const x0, y0, d = 125.4878, 35.50, 0.01
	fs := []string{feature("D", "district", "", rect(x0, y0, x0+4*d, y0+4*d))}
	code := func(i int) string { return fmt.Sprintf("G%02d", i%16) }
	for i := range 16 {
		x, y := x0+float64(i%4)*d, y0+float64(i/4)*d
		fs = append(fs, feature(code(i), "grid", "D", rect(x, y, x+d, y+d)))
	}
	if res, err := importString(s, "blk", collection(fs...), gridmap.ImportOptions{}); err != nil || len(res.Rejected) > 0 {
		t.Fatalf("import: %v %+v", err, res)
	}
	ts := postgres.NewTileStore(db)
	ts.KeepTileBlocks(2 * 1024)
	svc := tiles.NewService(ts, 64<<20)
	inv := &countingInvalidator{cache: svc.Cache()}
	following := make(chan struct{})
	go ts.FollowTileChanges(ctx, inv, func() { close(following) })
	<-following
	var list []tiles.Tile
	for z := 14; z <= 16; z++ {
		x0, y0, x1, y1 := tiles.Covering(z, [4]float64{x0, y0, x0 + 4*d, y0 + 4*d}, 0)
		for x := x0; x <= x1; x++ {
			for y := y0; y <= y1; y++ {
				list = append(list, tiles.Tile{Z: z, X: x, Y: y})
			}
		}
	}
	// Edit i (from 1) names grid i%16 "n<i>". Given how many edits have
	// been noticed, the least number each grid's name may carry.
	atLeast := func(noticed int64, grid int) int64 {
		for i := noticed; i > 0; i-- {
			if int(i%16) == grid {
				return i
			}
		}
		return 0
	}
	nameNumber := func(name string) int64 {
		var n int64
		if _, err := fmt.Sscanf(name, "n%d", &n); err != nil {
			return 0 // "grid Gxx", as imported
		}
		return n
	}
	var wg sync.WaitGroup
	var served atomic.Int64
	stop := make(chan struct{})
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tl := list[i%len(list)]
				noticed := inv.changes.Load()
				e, _, err := svc.Tile(ctx, gridmap.TileQuery{Tileset: "blk", Z: tl.Z, X: tl.X, Y: tl.Y})
				if err != nil {
					t.Errorf("tile %s: %v", tl, err)
					return
				}
				zr, err := gzip.NewReader(bytes.NewReader(e.Gzip))
				if err != nil {
					t.Error(err)
					return
				}
				raw, _ := io.ReadAll(zr)
				ls, err := mvt.Unmarshal(raw)
				if err != nil {
					t.Errorf("tile %s does not decode: %v", tl, err)
					return
				}
				grids := layerNamed(ls, "grids")
				if grids == nil {
					t.Errorf("tile %s has no grids", tl)
					return
				}
				for _, f := range grids.Features {
					c := fmt.Sprint(f.Properties["code"])
					var g int
					if _, err := fmt.Sscanf(c, "G%d", &g); err != nil {
						continue
					}
					if got, want := nameNumber(fmt.Sprint(f.Properties["name"])), atLeast(noticed, g); got < want {
						t.Errorf("tile %s names %s %v after edit %d was noticed", tl, c, f.Properties["name"], want)
						return
					}
				}
				served.Add(1)
			}
		}()
	}
	const edits = 40
	for i := 1; i <= edits; i++ {
		f := &geojson.Feature{Type: "Feature", Properties: geojson.Properties{"code": code(i), "name": fmt.Sprintf("n%d", i)}}
		cs := &gridmap.Changeset{Reason: "rename", Author: "tester", Operations: []gridmap.Operation{{Op: gridmap.OpPut, Code: code(i), Feature: f}}}
		if _, err := s.grids.ApplyChangeset(ctx, "blk", cs); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); inv.changes.Load() < int64(i); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("edit %d was not noticed in 10 s", i)
			}
		}
	}
	close(stop)
	wg.Wait()
	// Every grid's last name is in every tile that draws it.
	for _, tl := range list {
		ls, _ := render(t, ts, "blk", tl)
		for _, f := range layerNamed(ls, "grids").Features {
			var g int
			if _, err := fmt.Sscanf(fmt.Sprint(f.Properties["code"]), "G%d", &g); err == nil {
				if got, want := nameNumber(fmt.Sprint(f.Properties["name"])), atLeast(edits, g); got != want {
					t.Errorf("tile %s names G%02d n%d, want n%d", tl, g, got, want)
				}
			}
		}
	}
	n, bytes := ts.TileBlocks()
	t.Logf("%d tiles served to 8 clients over %d edits; %d blocks held (%d bytes)", served.Load(), edits, n, bytes)
	if served.Load() < int64(len(list)) {
		t.Errorf("only %d tiles served", served.Load())
	}
}

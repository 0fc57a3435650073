package postgres

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/tiles"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkb"
	"github.com/prometheus/client_golang/prometheus"
)

// Grid tiles from tiles.RawZoom on are drawn in Go from blocks: the grids
// of a layer meeting one tile at BlockZoom (and a margin around it), cut to
// it and projected to EPSG:3857 in one statement, with the labels and the
// changes of the block's area. A block serves every tile within it, 4 at
// z14 and 64 at z16, so that a map moving over an area reads it once;
// a tile then costs its drawing, not a statement. At z13 a block of New
// York reads in less time than one z14 tile costs PostGIS, and its tiles
// draw faster than from a z12 block (their grids are cut smaller), for
// about the same reads over a map's view. Blocks are kept in memory
// up to a budget, least recently used first out, and dropped by the same
// notices that drop cached tiles.
//
// A tile drawn from a block holds what the statement of rawGridTileSQL
// finds for it: the grids of the levels drawn at its zoom that meet it,
// clipped to it and its buffer, and the labels in it; its version is the
// newest change meeting it (tiles.Overlap32 is PostGIS's &&). Two
// differences no map shows: whether a grid meets the tile is decided in
// Web Mercator, where PostGIS decides it in lon/lat (a long straight edge
// bows between the two by centimetres, so a grid touching the tile's edge
// by less may be drawn by one and not the other); and features of one level go by code in byte order, which is
// the managed cluster's collation (C) but may not be another database's.
const BlockZoom = 13

// blockMargin is how far past its tile a block reaches, as a fraction of
// the tile: the buffer of a tile at tiles.RawZoom at the edge of the
// block, and to spare.
const blockMargin = float64(tiles.Buffer) / tiles.Extent

type blockKey struct {
	layer string
	x, y  int
}

type block struct {
	key     blockKey
	grids   []blockGrid  // by code
	labels  []blockLabel // by code
	base    int64        // the newest change covering the whole block
	changes []blockChange
	bytes   int64
}

// Grids and labels keep their level, not its depth: the layer's levels
// may change while the block is read.
type blockGrid struct {
	code, name, level, parent string
	geom                      orb.MultiPolygon // EPSG:3857, cut to the block
	bound                     orb.Bound
}

type blockLabel struct {
	code, name, level string
	at                orb.Point // EPSG:3857
}

type blockChange struct {
	box     [4]float32
	version int64
}

type blockLoad struct {
	done  chan struct{}
	block *block
	err   error
}

// tileBlocks holds blocks up to max bytes.
type tileBlocks struct {
	max int64

	mu    sync.Mutex
	bytes int64
	held  map[blockKey]*list.Element // of *block
	lru   list.List                  // most recently used first
	// flight holds the reads under way; a drop meeting one takes it out,
	// so that it is not kept and tiles asked for later read again.
	flight map[blockKey]*blockLoad
}

func newTileBlocks(maxBytes int64) *tileBlocks {
	return &tileBlocks{max: maxBytes, held: map[blockKey]*list.Element{}, flight: map[blockKey]*blockLoad{}}
}

// get returns the block k, reading it with load unless it is held or
// being read already.
func (t *tileBlocks) get(ctx context.Context, k blockKey, load func(context.Context) (*block, error)) (*block, error) {
	t.mu.Lock()
	if el, ok := t.held[k]; ok {
		t.lru.MoveToFront(el)
		t.mu.Unlock()
		return el.Value.(*block), nil
	}
	if l, ok := t.flight[k]; ok {
		t.mu.Unlock()
		select {
		case <-l.done:
			return l.block, l.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	l := &blockLoad{done: make(chan struct{}), err: errBlockFailed}
	t.flight[k] = l
	t.mu.Unlock()
	// Also when load panics: the read leaves flight (the next tile reads
	// again) and those waiting get its error.
	defer func() {
		t.mu.Lock()
		// A drop meeting the block since the read began took it out of
		// flight: the read may predate the change, and is not kept.
		if t.flight[k] == l {
			delete(t.flight, k)
			if l.err == nil && l.block.bytes <= t.max {
				t.held[k] = t.lru.PushFront(l.block)
				t.bytes += l.block.bytes
				for t.bytes > t.max {
					t.remove(t.lru.Back())
				}
			}
		}
		t.mu.Unlock()
		close(l.done)
	}()

	// The read outlives a client that gives up: others may be waiting.
	l.block, l.err = load(context.WithoutCancel(ctx))
	return l.block, l.err
}

var errBlockFailed = errors.New("reading the tile block failed")

func (t *tileBlocks) remove(el *list.Element) {
	b := el.Value.(*block)
	t.lru.Remove(el)
	delete(t.held, b.key)
	t.bytes -= b.bytes
}

// drop forgets the blocks of layer ("" for every layer) meeting one of
// boxes (lon/lat), or all of them for nil boxes.
func (t *tileBlocks) drop(layer string, boxes [][4]float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, el := range t.held {
		if layer != "" && k.layer != layer {
			continue
		}
		if boxes == nil || t.meets(k, boxes) {
			t.remove(el)
		}
	}
	// Reads under way may predate the change: tiles asked for from now on
	// wait for a read of their own.
	for k := range t.flight {
		if layer == "" || k.layer == layer {
			if boxes == nil || t.meets(k, boxes) {
				delete(t.flight, k)
			}
		}
	}
}

// meets tells whether block k meets one of boxes (lon/lat), with the
// margin of its buffer.
func (t *tileBlocks) meets(k blockKey, boxes [][4]float64) bool {
	for _, b := range boxes {
		x0, y0, x1, y1 := tiles.Covering(BlockZoom, b, 2*blockMargin)
		if k.x >= x0 && k.x <= x1 && k.y >= y0 && k.y <= y1 {
			return true
		}
	}
	return false
}

// stats returns how many blocks are held and their bytes.
func (t *tileBlocks) stats() (int, int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.held), t.bytes
}

// KeepTileBlocks makes the store draw grid tiles from tiles.RawZoom on in
// Go from blocks it keeps, up to maxBytes of them (see BlockZoom); 0 draws
// every tile in PostGIS. Call it before the store serves tiles; blocks
// are dropped by FollowTileChanges, which must run while the store serves.
func (s *TileStore) KeepTileBlocks(maxBytes int64) {
	if maxBytes <= 0 {
		s.blocks = nil
		return
	}
	s.blocks = newTileBlocks(maxBytes)
}

// TileBlocks returns how many blocks the store holds and their bytes.
func (s *TileStore) TileBlocks() (int, int64) {
	if s.blocks == nil {
		return 0, 0
	}
	return s.blocks.stats()
}

// Collectors returns the gauges of the blocks held: how many, and their
// bytes.
func (s *TileStore) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gridmap_tile_blocks", Help: "Blocks of grids held in memory to draw tiles from zoom 14 on."},
			func() float64 { n, _ := s.TileBlocks(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gridmap_tile_blocks_bytes", Help: "Bytes of the blocks of grids held in memory to draw tiles."},
			func() float64 { _, b := s.TileBlocks(); return float64(b) }),
	}
}

// DropTileBlocks forgets every block, as if the store had just started.
func (s *TileStore) DropTileBlocks() {
	if s.blocks != nil {
		s.blocks.drop("", nil)
	}
}

// dropBlocks forgets the blocks of layer meeting boxes (see tileBlocks.drop).
func (s *TileStore) dropBlocks(layer string, boxes [][4]float64) {
	if s.blocks != nil {
		s.blocks.drop(layer, boxes)
	}
}

// drawers are reused between tiles.
var drawers = sync.Pool{New: func() any { return tiles.NewDrawer(tiles.Tile{}) }}

// blockTile draws grid tile q of layer l from its block.
func (s *TileStore) blockTile(ctx context.Context, l *gridmap.Layer, q gridmap.TileQuery) (*gridmap.RenderedTile, error) {
	shift := q.Z - BlockZoom
	k := blockKey{layer: l.ID, x: q.X >> shift, y: q.Y >> shift}
	b, err := s.blocks.get(ctx, k, func(ctx context.Context) (*block, error) { return s.readBlock(ctx, k) })
	if err != nil {
		return nil, translate(err, "tile "+q.Tileset)
	}
	// The depth of each level drawn at this zoom: its place among all the
	// layer's levels, as rawGridTileSQL numbers it.
	depth := map[string]int{}
	for _, lv := range l.LevelsAt(q.Z) {
		depth[lv] = slices.Index(l.Levels, lv)
	}
	d := drawers.Get().(*tiles.Drawer)
	defer drawers.Put(d)
	d.Reset(tiles.Tile{Z: q.Z, X: q.X, Y: q.Y})
	env := d.Envelope()
	// Every grid is drawn before any is written, so that Thin sees the
	// edges they share.
	type drawnGrid struct {
		g        *blockGrid
		depth    int
		from, to int // its rings
	}
	var grids []drawnGrid
	for i := range b.grids {
		g := &b.grids[i]
		dep, drawn := depth[g.level]
		if !drawn || g.bound.Max[0] < env[0] || g.bound.Min[0] > env[2] || g.bound.Max[1] < env[1] || g.bound.Min[1] > env[3] ||
			!tiles.Meets(g.geom, env) {
			continue
		}
		from := len(d.Ends)
		if d.MultiPolygon(g.geom) {
			grids = append(grids, drawnGrid{g, dep, from, len(d.Ends)})
		}
	}
	d.Thin()
	// As rawGridTileSQL orders them: coarse levels first, then by code
	// (the block holds them by code).
	slices.SortStableFunc(grids, func(a, b drawnGrid) int { return a.depth - b.depth })
	gw := tiles.NewLayerWriter(gridmap.TileLayerGrids, "code", "name", "level", "depth", "parent")
	for _, dg := range grids {
		g := dg.g
		gw.Begin()
		gw.String(0, g.code)
		gw.String(1, g.name)
		gw.String(2, g.level)
		gw.Int(3, int64(dg.depth))
		if g.parent != "" {
			gw.String(4, g.parent)
		}
		d.Rings(dg.from, dg.to, gw.Ring)
		gw.End()
	}
	env32 := tiles.BoxF32(env)
	type drawnLabel struct {
		lb    *blockLabel
		depth int
	}
	var labels []drawnLabel
	for i := range b.labels {
		lb := &b.labels[i]
		if dep, drawn := depth[lb.level]; drawn && tiles.Overlap32(tiles.BoxF32([4]float64{lb.at[0], lb.at[1], lb.at[0], lb.at[1]}), env32) {
			labels = append(labels, drawnLabel{lb, dep})
		}
	}
	slices.SortStableFunc(labels, func(a, b drawnLabel) int { return a.depth - b.depth })
	lw := tiles.NewLayerWriter(gridmap.TileLayerLabels, "code", "name", "level", "depth")
	for _, dl := range labels {
		lw.Begin()
		lw.String(0, dl.lb.code)
		lw.String(1, dl.lb.name)
		lw.String(2, dl.lb.level)
		lw.Int(3, int64(dl.depth))
		lw.Point(d.Point(dl.lb.at))
		lw.End()
	}
	version := b.base
	for _, c := range b.changes {
		if c.version > version && tiles.Overlap32(c.box, env32) {
			version = c.version
		}
	}
	return &gridmap.RenderedTile{
		MVT:     lw.AppendTo(gw.AppendTo(nil)),
		Version: fmt.Sprintf("%s.%d.%d", l.ID, l.CreatedAt.UnixMicro(), version),
	}, nil
}

// blockSQL reads block $2/$3 at BlockZoom (with margin $4) of layer $1 in
// one snapshot: its current grids cut to it (kind 0), its labels (1), the
// changes meeting it (2) and the layer's data version (3).
var blockSQL = `
WITH env AS (
	SELECT e, ST_Transform(e, 4326) AS e4326 FROM ST_TileEnvelope(` + strconv.Itoa(BlockZoom) + `, $2, $3, margin => $4) e
)
SELECT 0 AS kind, v.code, v.name, v.level, v.parent_code,
       ST_AsBinary(ST_ClipByBox2D(v.geom, env.e4326)), NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::bigint
FROM grid_versions v, env
WHERE v.layer_id = $1 AND v.valid_to IS NULL AND v.geom && env.e4326
UNION ALL
SELECT 1, lb.code, v.name, v.level, NULL, NULL, ST_X(lb.geom), ST_Y(lb.geom), NULL, NULL, NULL
FROM grid_labels lb JOIN grid_versions v ON v.id = lb.version_id, env
WHERE lb.layer_id = $1 AND lb.geom && env.e
UNION ALL
SELECT 2, NULL, NULL, NULL, NULL, NULL, ST_XMin(c.area), ST_YMin(c.area), ST_XMax(c.area), ST_YMax(c.area), c.data_version
FROM layer_changes c, env
WHERE c.layer_id = $1 AND c.area && env.e
UNION ALL
SELECT 3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, coalesce((SELECT data_version FROM layers WHERE id = $1), -1)`

// readBlock reads block k: from the replica when it holds every change of
// the layer noticed so far, else from the primary.
func (s *TileStore) readBlock(ctx context.Context, k blockKey) (*block, error) {
	var b *block
	err := s.readFresh(k.layer, func(pool *pgxpool.Pool) (int64, error) {
		var layerVersion int64
		var err error
		b, layerVersion, err = queryBlock(ctx, pool, k)
		return layerVersion, err
	})
	return b, err
}

func queryBlock(ctx context.Context, pool *pgxpool.Pool, k blockKey) (*block, int64, error) {
	rows, err := pool.Query(ctx, blockSQL, k.layer, k.x, k.y, blockMargin)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	b := &block{key: k}
	// Changes covering the whole block (an import, say) meet every tile of
	// it: the newest of them is kept as the block's base version.
	e := tiles.Tile{Z: BlockZoom, X: k.x, Y: k.y}.Envelope()
	m := (e[2] - e[0]) * blockMargin
	whole := tiles.BoxF32([4]float64{e[0] - m, e[1] - m, e[2] + m, e[3] + m})
	var layerVersion int64
	var (
		kind                      int
		code, name, level, parent *string
		geom                      []byte
		x0, y0, x1, y1            *float64
		version                   *int64
	)
	str := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	for rows.Next() {
		if err := rows.Scan(&kind, &code, &name, &level, &parent, &geom, &x0, &y0, &x1, &y1, &version); err != nil {
			return nil, 0, err
		}
		switch kind {
		case 0:
			mp, err := blockGeometry(geom)
			if err != nil {
				return nil, 0, fmt.Errorf("grid %s in tile block %d/%d: %w", str(code), k.x, k.y, err)
			}
			if len(mp) == 0 {
				continue
			}
			// Projected here: the formula of EPSG:3857, at a fraction of
			// what ST_Transform costs in the statement.
			for _, p := range mp {
				for _, r := range p {
					for i, pt := range r {
						r[i] = geo.ToWebMercator(pt)
					}
				}
			}
			g := blockGrid{code: str(code), name: str(name), level: str(level), parent: str(parent), geom: mp, bound: mp.Bound()}
			b.grids = append(b.grids, g)
			b.bytes += int64(len(geom)) + int64(len(g.code)+len(g.name)+len(g.level)+len(g.parent)) + 128
		case 1:
			lb := blockLabel{code: str(code), name: str(name), level: str(level), at: orb.Point{*x0, *y0}}
			b.labels = append(b.labels, lb)
			b.bytes += int64(len(lb.code)+len(lb.name)+len(lb.level)) + 80
		case 2:
			c := blockChange{box: tiles.BoxF32([4]float64{*x0, *y0, *x1, *y1}), version: *version}
			if c.box[0] <= whole[0] && c.box[1] <= whole[1] && c.box[2] >= whole[2] && c.box[3] >= whole[3] {
				b.base = max(b.base, c.version)
				continue
			}
			b.changes = append(b.changes, c)
			b.bytes += 24
		case 3:
			layerVersion = *version
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	b.changes = slices.DeleteFunc(b.changes, func(c blockChange) bool { return c.version <= b.base })
	slices.SortFunc(b.grids, func(a, c blockGrid) int { return strings.Compare(a.code, c.code) })
	slices.SortFunc(b.labels, func(a, c blockLabel) int { return strings.Compare(a.code, c.code) })
	return b, layerVersion, nil
}

// blockGeometry reads the polygons of a grid cut to a block (a polygon, a
// multipolygon or a collection holding them); none for a grid whose box
// meets the block but not the grid itself (the cut is empty).
func blockGeometry(b []byte) (orb.MultiPolygon, error) {
	g, err := wkb.Unmarshal(b)
	if err != nil {
		return nil, err
	}
	var mp orb.MultiPolygon
	var walk func(g orb.Geometry)
	walk = func(g orb.Geometry) {
		switch g := g.(type) {
		case orb.Polygon:
			if len(g) > 0 && len(g[0]) >= 4 {
				mp = append(mp, g)
			}
		case orb.MultiPolygon:
			for _, p := range g {
				walk(p)
			}
		case orb.Collection:
			for _, c := range g {
				walk(c)
			}
		}
	}
	walk(g)
	return mp, nil
}

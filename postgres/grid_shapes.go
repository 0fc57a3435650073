package postgres

import (
	"context"
	"fmt"
	"sort"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/tiles"
	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkb"
	"github.com/paulmach/orb/project"
)

// FillTileShapes generalises the layers whose current grids lack tile
// shapes (written before tiles existed, or by hand), one transaction per
// layer under the layer's lock, and announces each as changed. Returns the
// layers it filled.
func (s *GridStore) FillTileShapes(ctx context.Context) ([]string, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT DISTINCT g.layer_id FROM grid_versions g
		WHERE g.valid_to IS NULL AND NOT EXISTS (SELECT 1 FROM grid_labels l WHERE l.layer_id = g.layer_id AND l.code = g.code)
		ORDER BY 1`)
	if err != nil {
		return nil, translate(err, "tile shapes")
	}
	layers, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, translate(err, "tile shapes")
	}
	for _, layer := range layers {
		err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, wholeLayerSettings); err != nil {
				return err
			}
			var version int64
			if err := tx.QueryRow(ctx, `SELECT data_version FROM layers WHERE id = $1 FOR UPDATE`, layer).Scan(&version); err != nil {
				return err
			}
			if _, err := refreshShapes(ctx, tx, layer, nil, nil); err != nil {
				return err
			}
			return notifyChange(ctx, tx, gridmap.Change{Layer: layer, Kind: gridmap.ChangeBoundaries, DataVersion: version})
		})
		if err != nil {
			return nil, translate(err, "tile shapes of layer "+layer)
		}
	}
	return layers, nil
}

// labelPrecisionM is how close to the best label point (in Web Mercator
// metres) the search stops.
const labelPrecisionM = 2

// refreshShapes brings the tile copies of a layer's current grids (one
// generalised shape per band, and a label point) up to date inside tx,
// after the grids named in codes changed (created, reshaped, renamed or
// deleted) within area, a lon/lat box; nil codes means the whole layer.
//
// A grid's generalised shape depends on its neighbours (their shared edges
// are simplified once, see geo.Generaliser), so every current grid meeting
// area is generalised again, from its level's grids meeting theirs. It
// returns the lon/lat box of every shape that changed, which may reach past
// area where a neighbour's simplified edge moved; nil when nothing changed.
func refreshShapes(ctx context.Context, tx pgx.Tx, layer string, codes []string, area []float64) ([]float64, error) {
	whole := codes == nil
	for _, drop := range []struct{ what, byCode, ofLayer string }{
		{"shapes", dropClosedShapesSQL, dropClosedShapesOfLayerSQL},
		{"labels", dropClosedLabelsSQL, dropClosedLabelsOfLayerSQL},
	} {
		var err error
		if whole {
			_, err = tx.Exec(ctx, drop.ofLayer, layer)
		} else {
			_, err = tx.Exec(ctx, drop.byCode, layer, codes)
		}
		if err != nil {
			return nil, fmt.Errorf("dropping %s of closed versions: %w", drop.what, err)
		}
	}
	var changed orb.Bound
	var someChanged bool
	grow := func(b orb.Bound) {
		if !someChanged {
			changed, someChanged = b, true
		} else {
			changed = changed.Union(b)
		}
	}
	var chunks [][]int64
	var near *neighbours // a whole layer's grids: nil finds neighbours in the database
	var starts []int     // where each chunk starts in near.ids, the first at 0
	if whole {
		// The whole layer goes in chunks of nearby grids, so that the
		// geometry read at once stays bounded however big the layer is.
		// Each grid's box is kept (about 80 bytes a grid with its tree,
		// 100 MB for a province's 1.2 million) to find the neighbours of
		// a chunk's grids here: asked of the database, they were a third
		// of a province's time (a probe of the geometry index per grid).
		// Ordered by level first: neighbours takes each level's grids as
		// one run.
		rows, err := tx.Query(ctx, `SELECT id, level, ST_NPoints(geom), ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom)
			FROM grid_versions WHERE layer_id = $1 AND valid_to IS NULL
			ORDER BY level, ST_GeoHash(ST_MakePoint((ST_XMin(geom) + ST_XMax(geom)) / 2, (ST_YMin(geom) + ST_YMax(geom)) / 2))`, layer)
		if err != nil {
			return nil, fmt.Errorf("listing grids to generalise: %w", err)
		}
		near, starts = &neighbours{}, []int{0}
		sum := 0 // the vertices of the chunk under way
		var id int64
		var level string
		var points int
		var b orb.Bound
		if _, err := pgx.ForEachRow(rows, []any{&id, &level, &points, &b.Min[0], &b.Min[1], &b.Max[0], &b.Max[1]}, func() error {
			if n := len(near.ids); n > 0 && sum+points > shapeChunkPoints {
				starts, sum = append(starts, n), 0
			}
			sum += points
			return near.add(id, level, b)
		}); err != nil {
			return nil, fmt.Errorf("listing grids to generalise: %w", err)
		}
		for c, first := range starts {
			last := len(near.ids)
			if c+1 < len(starts) {
				last = starts[c+1]
			}
			chunks = append(chunks, near.ids[first:last])
		}
		near.index()
	} else {
		// What the deletes above removed was announced with the edit's own
		// area; the current grids of the changed levels meeting it remain.
		if area == nil {
			return nil, nil
		}
		// Levels are generalised each on its own: only the levels of the
		// changed grids can change.
		rows, err := tx.Query(ctx, `SELECT id FROM grid_versions WHERE layer_id = $1 AND valid_to IS NULL
			AND geom && ST_MakeEnvelope(($2::float8[])[1], ($2::float8[])[2], ($2::float8[])[3], ($2::float8[])[4], 4326)
			AND level IN (SELECT level FROM grid_versions WHERE layer_id = $1 AND code = ANY($3))`, layer, area, codes)
		if err != nil {
			return nil, fmt.Errorf("listing grids to generalise: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return nil, fmt.Errorf("listing grids to generalise: %w", err)
		}
		chunks = [][]int64{ids}
	}
	l, err := scanLayer(tx.QueryRow(ctx, `SELECT `+layerColumns+` FROM layers WHERE id = $1`, layer))
	if err != nil {
		return nil, fmt.Errorf("reading layer %s: %w", layer, err)
	}
	// Chunks go through in a pipeline: while one chunk is generalised (Go,
	// one core), the previous one is written and the next one read (the
	// database, the other core). Only one chunk is generalised at a time.
	gen := geo.NewGeneraliser()
	var computing chan *shapeBatch
	var written *shapeBatch
	for c, ids := range chunks {
		if len(ids) == 0 {
			continue
		}
		var all []int64
		if near != nil {
			all = near.of(starts[c], starts[c]+len(ids))
		}
		data, err := readChunk(ctx, tx, layer, ids, all)
		if err == nil && computing != nil {
			written = <-computing
			computing = nil
		}
		if err != nil {
			if computing != nil {
				<-computing
			}
			return nil, err
		}
		computing = make(chan *shapeBatch, 1)
		go func(out chan<- *shapeBatch) { out <- computeChunk(gen, l, data, grow) }(computing)
		if written != nil {
			if err := written.write(ctx, tx, layer); err != nil {
				<-computing
				return nil, err
			}
			written = nil
		}
	}
	if computing != nil {
		if err := (<-computing).write(ctx, tx, layer); err != nil {
			return nil, err
		}
	}
	if !someChanged || whole {
		return nil, nil
	}
	lo := project.Mercator.ToWGS84(changed.Min)
	hi := project.Mercator.ToWGS84(changed.Max)
	return []float64{lo[0], lo[1], hi[0], hi[1]}, nil
}

// The dropClosed statements delete the shapes and labels of layer $1
// whose version is no longer current: of the grids $2, or of the whole
// layer. Two statements each, not one with a flag: a plan made once for
// both (PostgreSQL may keep one for a prepared statement) could not probe
// the primary key by code, and an edit would read every shape of its
// layer.
const (
	dropClosedShapesSQL = `DELETE FROM grid_shapes s WHERE s.layer_id = $1 AND s.code = ANY($2)
		AND NOT EXISTS (SELECT 1 FROM grid_versions g WHERE g.id = s.version_id AND g.valid_to IS NULL)`
	dropClosedLabelsSQL = `DELETE FROM grid_labels s WHERE s.layer_id = $1 AND s.code = ANY($2)
		AND NOT EXISTS (SELECT 1 FROM grid_versions g WHERE g.id = s.version_id AND g.valid_to IS NULL)`
	dropClosedShapesOfLayerSQL = `DELETE FROM grid_shapes s WHERE s.layer_id = $1
		AND NOT EXISTS (SELECT 1 FROM grid_versions g WHERE g.id = s.version_id AND g.valid_to IS NULL)`
	dropClosedLabelsOfLayerSQL = `DELETE FROM grid_labels s WHERE s.layer_id = $1
		AND NOT EXISTS (SELECT 1 FROM grid_versions g WHERE g.id = s.version_id AND g.valid_to IS NULL)`
)

// shapeChunkPoints is about how many vertices a whole-layer refresh
// generalises at once (plus the neighbours of those grids).
const shapeChunkPoints = 20000

// chunkData is what generalising a chunk of grids needs from the database.
type chunkData struct {
	byLevel map[string][]gridRow
	old     *stored
}

type gridRow struct {
	id     int64
	code   string
	level  string
	target bool
	geom   orb.MultiPolygon // Web Mercator
}

// readChunk reads the grids ids (targets), all: the targets and every
// grid of their level meeting them (found by the database when nil), and
// the targets' stored shapes.
func readChunk(ctx context.Context, tx pgx.Tx, layer string, ids, all []int64) (*chunkData, error) {
	if all == nil {
		rows, err := tx.Query(ctx, shapesNeighboursSQL, layer, ids)
		if err != nil {
			return nil, fmt.Errorf("finding neighbours to generalise with: %w", err)
		}
		if all, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
			return nil, fmt.Errorf("finding neighbours to generalise with: %w", err)
		}
	}
	rows, err := tx.Query(ctx, `SELECT id, code, level, id = ANY($2), ST_AsBinary(geom) FROM grid_versions WHERE id = ANY($1)`, all, ids)
	if err != nil {
		return nil, fmt.Errorf("reading grids to generalise: %w", err)
	}
	d := &chunkData{byLevel: map[string][]gridRow{}}
	var targets []string
	for rows.Next() {
		var r gridRow
		var g []byte
		if err := rows.Scan(&r.id, &r.code, &r.level, &r.target, &g); err != nil {
			rows.Close()
			return nil, err
		}
		o, err := wkb.Unmarshal(g)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("grid %s geometry: %w", r.code, err)
		}
		if r.geom, err = geo.Polygonal(o); err != nil {
			rows.Close()
			return nil, fmt.Errorf("grid %s geometry: %w", r.code, err)
		}
		r.geom = geo.MultiPolygonToWebMercator(r.geom)
		d.byLevel[r.level] = append(d.byLevel[r.level], r)
		if r.target {
			targets = append(targets, r.code)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading grids to generalise: %w", err)
	}
	if d.old, err = storedShapes(ctx, tx, layer, targets); err != nil {
		return nil, err
	}
	return d, nil
}

// computeChunk generalises a chunk's targets for every band their level is
// drawn at, places their labels, and returns the writes for what changed,
// growing the changed area with grow.
func computeChunk(gen *geo.Generaliser, l *gridmap.Layer, d *chunkData, grow func(orb.Bound)) *shapeBatch {
	old := d.old
	byLevel := d.byLevel
	up := &shapeBatch{}
	for level, grids := range byLevel {
		// A level is drawn from its first zoom on: bands below need no
		// shapes (and lose those they had).
		first := tiles.BandFor(l.Zooms[level][0])
		if first < 0 {
			first = len(tiles.BandZooms)
		}
		polys := make([]orb.MultiPolygon, len(grids))
		for i, r := range grids {
			polys[i] = r.geom
		}
		topo := gen.Topology(polys)
		finest := polys
		want := make([]bool, len(grids))
		for i, r := range grids {
			want[i] = r.target
		}
		for band := range tiles.BandZooms {
			out := make([]orb.MultiPolygon, len(grids))
			if band >= first {
				out = topo.SimplifySome(tiles.Tolerance(band), want)
			}
			for i, r := range grids {
				if !r.target {
					continue
				}
				key := shapeKey{r.code, int16(band)}
				prev, had := old.shapes[key]
				switch {
				case out[i] == nil && had:
					up.drop(key)
					grow(prev.geom.Bound())
				case out[i] == nil:
				case !had || prev.versionID != r.id || !orb.Equal(prev.geom, out[i]):
					up.put(key, r.id, out[i])
					grow(out[i].Bound())
					if had {
						grow(prev.geom.Bound())
					}
				}
			}
			if band == len(tiles.BandZooms)-1 {
				finest = out
			}
		}
		for i, r := range grids {
			if !r.target || old.labels[r.code] == r.id {
				continue
			}
			shape := finest[i]
			if shape == nil {
				shape = r.geom
			}
			up.label(r.code, r.id, geo.LabelPoint(shape, labelPrecisionM))
		}
	}
	return up
}

// neighbours finds, among a layer's current grids, those of a grid's level
// whose box meets its box, as shapesNeighboursSQL does in the database.
// (PostGIS compares boxes rounded outward to single precision, so it may
// find a few more, that come near a grid but share no point with it: they
// change nothing of its shape.) The grids are added by level, so that each
// level's grids are a run of ids.
type neighbours struct {
	ids    []int64
	bounds []orb.Bound // of ids[i]
	runs   []int       // where each level's run starts in ids
	trees  []*geo.BoxIndex
	levels map[string]bool // the levels added, the last one's run under way
	level  string          // of the grid added last
}

// add adds a grid after those added before; a level's grids come one after
// another, or it refuses.
func (n *neighbours) add(id int64, level string, b orb.Bound) error {
	if len(n.ids) == 0 || level != n.level {
		if n.levels == nil {
			n.levels = map[string]bool{}
		}
		if n.levels[level] {
			return fmt.Errorf("the grids of level %s are listed apart", level)
		}
		n.levels[level] = true
		n.runs, n.level = append(n.runs, len(n.ids)), level
	}
	n.ids, n.bounds = append(n.ids, id), append(n.bounds, b)
	return nil
}

// end is where the k-th level's run ends in ids.
func (n *neighbours) end(k int) int {
	if k+1 < len(n.runs) {
		return n.runs[k+1]
	}
	return len(n.ids)
}

// index builds each level's tree once every grid is added.
func (n *neighbours) index() {
	n.trees = make([]*geo.BoxIndex, len(n.runs))
	for k, first := range n.runs {
		n.trees[k] = geo.NewBoxIndex(n.bounds[first:n.end(k)])
	}
}

// of returns the grids from position first up to last in ids and every
// grid of the same level whose box meets one of theirs, each once.
func (n *neighbours) of(first, last int) []int64 {
	seen := make(map[int]bool, 4*(last-first))
	out := make([]int64, 0, 4*(last-first))
	var hits []int32
	k := sort.SearchInts(n.runs, first+1) - 1 // the level of ids[first]
	for i := first; i < last; i++ {
		for i >= n.end(k) {
			k++
		}
		hits = n.trees[k].Search(n.bounds[i], hits[:0])
		for _, h := range hits {
			if m := n.runs[k] + int(h); !seen[m] {
				seen[m] = true
				out = append(out, n.ids[m])
			}
		}
	}
	return out
}

// shapesNeighboursSQL returns the grids $2 (ids of current versions) and
// every current grid of the same level whose box meets one of theirs: all
// of a grid's shared edges meet there. The lateral subquery fixes the plan
// (from each target through the GiST index), whatever the statistics said
// when the statement was prepared.
const shapesNeighboursSQL = `
SELECT DISTINCT n.id FROM grid_versions t CROSS JOIN LATERAL (
	SELECT g.id FROM grid_versions g
	WHERE g.layer_id = $1 AND g.valid_to IS NULL AND g.level = t.level AND g.geom && t.geom OFFSET 0) n
WHERE t.id = ANY($2) AND t.layer_id = $1`

type shapeKey struct {
	code string
	band int16
}

type storedShape struct {
	versionID int64
	geom      orb.MultiPolygon
}

type stored struct {
	shapes map[shapeKey]storedShape
	labels map[string]int64 // code -> version the label was placed for
}

// storedShapesSQL and storedLabelsSQL read the shapes and labels stored
// for the grids $2 of layer $1, a probe of the primary key for each grid
// (OFFSET 0 keeps the probe a probe: it cannot become a join). A whole
// layer's refresh writes them chunk by chunk in one transaction, so their
// tables grow a thousandfold within it, unanalysed, and PostgreSQL guessed
// that a two-hundredth of them were the layer's: asked as code = ANY($2),
// or as a join, every chunk read all the layer's rows written so far (a
// province's 2,300 chunks took nine minutes instead of three).
const (
	storedShapesSQL = `SELECT s.code, s.band, s.version_id, ST_AsBinary(s.geom) FROM unnest($2::text[]) c(code)
		CROSS JOIN LATERAL (SELECT * FROM grid_shapes s WHERE s.layer_id = $1 AND s.code = c.code OFFSET 0) s`
	storedLabelsSQL = `SELECT l.code, l.version_id FROM unnest($2::text[]) c(code)
		CROSS JOIN LATERAL (SELECT * FROM grid_labels l WHERE l.layer_id = $1 AND l.code = c.code OFFSET 0) l`
	// dropShapesSQL deletes the shapes of layer $1 in bands $3 of grids $2
	// (pairwise), found the same way.
	dropShapesSQL = `DELETE FROM grid_shapes WHERE ctid = ANY(ARRAY(
		SELECT x.ctid FROM unnest($2::text[], $3::smallint[]) d(code, band)
		CROSS JOIN LATERAL (SELECT s.ctid FROM grid_shapes s WHERE s.layer_id = $1 AND s.code = d.code AND s.band = d.band OFFSET 0) x))`
)

func storedShapes(ctx context.Context, tx pgx.Tx, layer string, codes []string) (*stored, error) {
	s := &stored{shapes: map[shapeKey]storedShape{}, labels: map[string]int64{}}
	rows, err := tx.Query(ctx, storedShapesSQL, layer, codes)
	if err != nil {
		return nil, fmt.Errorf("reading shapes: %w", err)
	}
	for rows.Next() {
		var k shapeKey
		var v storedShape
		var g []byte
		if err := rows.Scan(&k.code, &k.band, &v.versionID, &g); err != nil {
			rows.Close()
			return nil, err
		}
		o, err := wkb.Unmarshal(g)
		if err != nil {
			rows.Close()
			return nil, err
		}
		v.geom, _ = geo.Polygonal(o)
		s.shapes[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading shapes: %w", err)
	}
	rows, err = tx.Query(ctx, storedLabelsSQL, layer, codes)
	if err != nil {
		return nil, fmt.Errorf("reading labels: %w", err)
	}
	var code string
	var id int64
	_, err = pgx.ForEachRow(rows, []any{&code, &id}, func() error {
		s.labels[code] = id
		return nil
	})
	return s, err
}

// shapeBatch collects shape and label writes for one round of statements.
type shapeBatch struct {
	putCodes    []string
	putBands    []int16
	putVersions []int64
	putGeoms    [][]byte
	dropCodes   []string
	dropBands   []int16
	lblCodes    []string
	lblVersions []int64
	lblX, lblY  []float64
}

func (b *shapeBatch) put(k shapeKey, version int64, mp orb.MultiPolygon) {
	g, _ := wkb.Marshal(mp)
	b.putCodes, b.putBands = append(b.putCodes, k.code), append(b.putBands, k.band)
	b.putVersions, b.putGeoms = append(b.putVersions, version), append(b.putGeoms, g)
}

func (b *shapeBatch) drop(k shapeKey) {
	b.dropCodes, b.dropBands = append(b.dropCodes, k.code), append(b.dropBands, k.band)
}

func (b *shapeBatch) label(code string, version int64, p orb.Point) {
	b.lblCodes, b.lblVersions = append(b.lblCodes, code), append(b.lblVersions, version)
	b.lblX, b.lblY = append(b.lblX, p[0]), append(b.lblY, p[1])
}

func (b *shapeBatch) write(ctx context.Context, tx pgx.Tx, layer string) error {
	batch := &pgx.Batch{}
	if len(b.dropCodes) > 0 {
		batch.Queue(dropShapesSQL, layer, b.dropCodes, b.dropBands)
	}
	if len(b.putCodes) > 0 {
		batch.Queue(`INSERT INTO grid_shapes (layer_id, band, code, version_id, geom)
			SELECT $1, u.band, u.code, u.version_id, ST_SetSRID(ST_GeomFromWKB(u.wkb), 3857)
			FROM unnest($2::text[], $3::smallint[], $4::bigint[], $5::bytea[]) u(code, band, version_id, wkb)
			ON CONFLICT (layer_id, code, band) DO UPDATE SET version_id = excluded.version_id, geom = excluded.geom`,
			layer, b.putCodes, b.putBands, b.putVersions, b.putGeoms)
	}
	if len(b.lblCodes) > 0 {
		batch.Queue(`INSERT INTO grid_labels (layer_id, code, version_id, geom)
			SELECT $1, u.code, u.version_id, ST_SetSRID(ST_MakePoint(u.x, u.y), 3857)
			FROM unnest($2::text[], $3::bigint[], $4::float8[], $5::float8[]) u(code, version_id, x, y)
			ON CONFLICT (layer_id, code) DO UPDATE SET version_id = excluded.version_id, geom = excluded.geom`,
			layer, b.lblCodes, b.lblVersions, b.lblX, b.lblY)
	}
	if batch.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("writing shapes: %w", err)
	}
	return nil
}

package tiles

import (
	"encoding/binary"

	"github.com/gridmap/gridmap/geo"
)

// LayerWriter encodes one layer of a Mapbox Vector Tile (specification
// 2.1) as PostGIS's ST_AsMVT does: every key listed up front in column
// order, values shared between features in the order first met, a null
// value left out of a feature's tags, integers as uint_value when not
// negative and sint_value when negative. Features go in the order they are
// written, so the same features give the same bytes on every instance.
//
// Write a feature with Begin, its properties, one geometry, then End.
type LayerWriter struct {
	name   string
	keys   []string
	values map[value]uint32
	order  []value

	features []byte
	props    []prop
	tags     []uint32
	geom     []uint32
	kind     uint32
	n        int
	// cursor is where the last geometry command left the pen, relative to
	// which the next one is written; it restarts at 0,0 in each feature.
	cx, cy int32
}

// Geometry types of the specification.
const (
	mvtPoint   = 1
	mvtPolygon = 3
)

// Value kinds, as the field numbers of the specification's Value message.
const (
	valString = 1
	valUint   = 5
	valSint   = 6
)

type value struct {
	kind int
	s    string
	i    int64
}

// NewLayerWriter returns a writer of the layer named name whose features
// carry properties of the given keys.
func NewLayerWriter(name string, keys ...string) *LayerWriter {
	return &LayerWriter{name: name, keys: keys, values: map[value]uint32{}}
}

// Len returns the number of features written.
func (w *LayerWriter) Len() int { return w.n }

// Begin starts a feature.
func (w *LayerWriter) Begin() {
	w.props, w.tags, w.geom, w.kind, w.cx, w.cy = w.props[:0], w.tags[:0], w.geom[:0], 0, 0, 0
}

// String sets property key (the index of its key) to s.
func (w *LayerWriter) String(key int, s string) { w.tag(key, value{kind: valString, s: s}) }

// Int sets property key (the index of its key) to i.
func (w *LayerWriter) Int(key int, i int64) {
	if i < 0 {
		w.tag(key, value{kind: valSint, i: i})
	} else {
		w.tag(key, value{kind: valUint, i: i})
	}
}

// tag holds a property until End: a feature dropped leaves no value in the
// layer.
func (w *LayerWriter) tag(key int, v value) {
	w.props = append(w.props, prop{key, v})
}

type prop struct {
	key int
	v   value
}

// Point makes the feature's geometry the point x, y (tile coordinates).
func (w *LayerWriter) Point(x, y int32) {
	w.kind = mvtPoint
	w.geom = append(w.geom, command(1, 1))
	w.moveBy(x, y)
}

// Ring adds a ring to the feature's polygon geometry: pts as x, y pairs in
// tile coordinates, without the closing point. Exterior rings wind with a
// positive area in tile coordinates (y down), holes negative; each
// exterior ring comes before its holes.
func (w *LayerWriter) Ring(pts []int32) {
	w.kind = mvtPolygon
	n := len(pts) / 2
	w.geom = append(w.geom, command(1, 1))
	w.moveBy(pts[0], pts[1])
	w.geom = append(w.geom, command(2, n-1))
	for i := 1; i < n; i++ {
		w.moveBy(pts[2*i], pts[2*i+1])
	}
	w.geom = append(w.geom, command(7, 1))
}

func (w *LayerWriter) moveBy(x, y int32) {
	dx, dy := x-w.cx, y-w.cy
	w.geom = append(w.geom, zigzag(dx), zigzag(dy))
	w.cx, w.cy = x, y
}

func command(id, count int) uint32 { return uint32(id&7) | uint32(count)<<3 }

func zigzag(v int32) uint32 { return uint32((v << 1) ^ (v >> 31)) }

// End finishes the feature; one without geometry is dropped.
func (w *LayerWriter) End() {
	if w.kind == 0 || len(w.geom) == 0 {
		return
	}
	for _, p := range w.props {
		id, ok := w.values[p.v]
		if !ok {
			id = uint32(len(w.order))
			w.values[p.v] = id
			w.order = append(w.order, p.v)
		}
		w.tags = append(w.tags, uint32(p.key), id)
	}
	var f []byte
	f = appendPacked(f, 2, w.tags)
	f = appendVarintField(f, 3, uint64(w.kind))
	f = appendPacked(f, 4, w.geom)
	w.features = appendBytesField(w.features, 2, f)
	w.n++
}

// AppendTo appends the layer to a tile's bytes (a Tile message's layers
// field): nothing when it holds no feature, as ST_AsMVT over no rows.
func (w *LayerWriter) AppendTo(tile []byte) []byte {
	if w.n == 0 {
		return tile
	}
	var l []byte
	l = appendBytesField(l, 1, []byte(w.name))
	l = append(l, w.features...)
	for _, k := range w.keys {
		l = appendBytesField(l, 3, []byte(k))
	}
	for _, v := range w.order {
		var m []byte
		switch v.kind {
		case valString:
			m = appendBytesField(m, valString, []byte(v.s))
		case valUint:
			m = appendVarintField(m, valUint, uint64(v.i))
		case valSint:
			m = appendVarintField(m, valSint, uint64((v.i<<1)^(v.i>>63)))
		}
		l = appendBytesField(l, 4, m)
	}
	l = appendVarintField(l, 5, Extent)
	l = appendVarintField(l, 15, 2)
	return appendBytesField(tile, 3, l)
}

func appendVarintField(b []byte, field int, v uint64) []byte {
	b = binary.AppendUvarint(b, uint64(field)<<3)
	return binary.AppendUvarint(b, v)
}

func appendBytesField(b []byte, field int, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(field)<<3|2)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendPacked(b []byte, field int, vs []uint32) []byte {
	n := 0
	for _, v := range vs {
		n += uvarintLen(uint64(v))
	}
	b = binary.AppendUvarint(b, uint64(field)<<3|2)
	b = binary.AppendUvarint(b, uint64(n))
	for _, v := range vs {
		b = binary.AppendUvarint(b, uint64(v))
	}
	return b
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// Envelope returns tile t's extent in EPSG:3857 metres (minX, minY, maxX,
// maxY), computed as PostGIS's ST_TileEnvelope does, so that tests of a
// box against it agree with the database's to the last bit.
func (t Tile) Envelope() [4]float64 {
	const lo, hi = -20037508.342789244, 20037508.342789244
	n := float64(int(1) << t.Z)
	sizeX, sizeY := (hi-lo)/n, (hi-lo)/n
	return [4]float64{lo + sizeX*float64(t.X), hi - sizeY*float64(t.Y+1), lo + sizeX*float64(t.X+1), hi - sizeY*float64(t.Y)}
}

// BoxF32 rounds a box outwards to float32, as PostGIS keeps the boxes its
// && operator compares.
func BoxF32(b [4]float64) [4]float32 {
	return [4]float32{geo.Down32(b[0]), geo.Down32(b[1]), geo.Up32(b[2]), geo.Up32(b[3])}
}

// Overlap32 is PostGIS's && on two rounded boxes.
func Overlap32(a, b [4]float32) bool {
	return a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3]
}

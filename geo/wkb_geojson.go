package geo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/paulmach/orb"
)

// AppendGeoJSON appends the GeoJSON geometry of a 2D WKB geometry (as
// PostGIS's ST_AsBinary writes it) to dst, its coordinates rounded to
// decimals places (0-15) with trailing zeros dropped, as ST_AsGeoJSON(geom,
// decimals) writes them. It decodes straight into text, so features stream
// out of the database without building a geometry per row.
//
// Points, lines, polygons, their multi- forms and collections are read;
// Z and M coordinates and SRIDs (EWKB) are refused with an error, as is
// WKB cut short.
func AppendGeoJSON(dst, wkb []byte, decimals int) ([]byte, error) {
	r := wkbReader{b: wkb, decimals: decimals}
	dst, err := r.geometry(dst, 0)
	if err != nil {
		return dst, err
	}
	if r.i != len(r.b) {
		return dst, errors.New("wkb: bytes left after the geometry")
	}
	return dst, nil
}

type wkbReader struct {
	b        []byte
	i        int
	order    binary.ByteOrder
	decimals int
}

var errShortWKB = errors.New("wkb: cut short")

// maxWKBDepth bounds collections within collections.
const maxWKBDepth = 32

var geoJSONTypes = [...]string{1: "Point", 2: "LineString", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString", 6: "MultiPolygon", 7: "GeometryCollection"}

func (r *wkbReader) header() (uint32, error) {
	if r.i+5 > len(r.b) {
		return 0, errShortWKB
	}
	switch r.b[r.i] {
	case 0:
		r.order = binary.BigEndian
	case 1:
		r.order = binary.LittleEndian
	default:
		return 0, fmt.Errorf("wkb: byte order %d", r.b[r.i])
	}
	t := r.order.Uint32(r.b[r.i+1:])
	r.i += 5
	if t < 1 || t > 7 {
		return 0, fmt.Errorf("wkb: geometry type %d (only 2D geometries are read)", t)
	}
	return t, nil
}

func (r *wkbReader) count() (int, error) {
	if r.i+4 > len(r.b) {
		return 0, errShortWKB
	}
	n := int(r.order.Uint32(r.b[r.i:]))
	r.i += 4
	if n < 0 || n > (len(r.b)-r.i)/4 { // every element takes at least four more bytes; n < 0 where int is 32 bits
		return 0, errShortWKB
	}
	return n, nil
}

func (r *wkbReader) geometry(dst []byte, depth int) ([]byte, error) {
	t, err := r.header()
	if err != nil {
		return dst, err
	}
	dst = append(dst, `{"type":"`...)
	dst = append(dst, geoJSONTypes[t]...)
	if t == 7 {
		if depth >= maxWKBDepth {
			return dst, errors.New("wkb: collections nested too deep")
		}
		dst = append(dst, `","geometries":[`...)
		n, err := r.count()
		if err != nil {
			return dst, err
		}
		for k := range n {
			if k > 0 {
				dst = append(dst, ',')
			}
			if dst, err = r.geometry(dst, depth+1); err != nil {
				return dst, err
			}
		}
		return append(dst, "]}"...), nil
	}
	dst = append(dst, `","coordinates":`...)
	dst, err = r.coordinates(dst, t)
	if err != nil {
		return dst, err
	}
	return append(dst, '}'), nil
}

// coordinates appends the coordinates array of a geometry of type t whose
// header has been read.
func (r *wkbReader) coordinates(dst []byte, t uint32) ([]byte, error) {
	switch t {
	case 1:
		return r.point(dst)
	case 2:
		return r.points(dst)
	case 3:
		return r.rings(dst)
	}
	// Multi-geometries: each member carries a header of its own.
	n, err := r.count()
	if err != nil {
		return dst, err
	}
	dst = append(dst, '[')
	for k := range n {
		if k > 0 {
			dst = append(dst, ',')
		}
		mt, err := r.header()
		if err != nil {
			return dst, err
		}
		if mt != t-3 {
			return dst, fmt.Errorf("wkb: a %s holds a %s", geoJSONTypes[t], geoJSONTypes[mt])
		}
		if dst, err = r.coordinates(dst, mt); err != nil {
			return dst, err
		}
	}
	return append(dst, ']'), nil
}

func (r *wkbReader) rings(dst []byte) ([]byte, error) {
	n, err := r.count()
	if err != nil {
		return dst, err
	}
	dst = append(dst, '[')
	for k := range n {
		if k > 0 {
			dst = append(dst, ',')
		}
		if dst, err = r.points(dst); err != nil {
			return dst, err
		}
	}
	return append(dst, ']'), nil
}

func (r *wkbReader) points(dst []byte) ([]byte, error) {
	n, err := r.count()
	if err != nil {
		return dst, err
	}
	if r.i+16*n > len(r.b) {
		return dst, errShortWKB
	}
	dst = append(dst, '[')
	for k := range n {
		if k > 0 {
			dst = append(dst, ',')
		}
		if dst, err = r.point(dst); err != nil {
			return dst, err
		}
	}
	return append(dst, ']'), nil
}

func (r *wkbReader) point(dst []byte) ([]byte, error) {
	if r.i+16 > len(r.b) {
		return dst, errShortWKB
	}
	x := math.Float64frombits(r.order.Uint64(r.b[r.i:]))
	y := math.Float64frombits(r.order.Uint64(r.b[r.i+8:]))
	r.i += 16
	if math.IsNaN(x) && math.IsNaN(y) { // an empty point
		return append(dst, "[]"...), nil
	}
	if math.IsNaN(x) || math.IsNaN(y) || math.IsInf(x, 0) || math.IsInf(y, 0) {
		return dst, errors.New("wkb: a coordinate is not a finite number")
	}
	dst = append(dst, '[')
	dst = appendCoordinate(dst, x, r.decimals)
	dst = append(dst, ',')
	dst = appendCoordinate(dst, y, r.decimals)
	return append(dst, ']'), nil
}

// appendCoordinate writes v rounded to decimals places, without trailing
// zeros (and without a point when nothing follows it); -0 is written 0.
// The rounded value is written in its shortest form, which strconv does
// several times faster than a fixed number of places.
func appendCoordinate(dst []byte, v float64, decimals int) []byte {
	r := v
	if p := pow10[decimals]; math.Abs(v) < 1e15 { // beyond, a double has no fraction left to round
		r = math.Round(v*p) / p
	}
	if r == 0 {
		return append(dst, '0')
	}
	return strconv.AppendFloat(dst, r, 'f', -1, 64)
}

var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// PolygonsFromWKB reads a Polygon or a MultiPolygon from 2D WKB (as
// PostGIS's ST_AsBinary writes it) as the MultiPolygon Polygonal makes of
// it, into mp's arrays: those of the last call's answer, reused. The
// answer holds until the next call with it. wkb.Unmarshal makes new
// arrays for every ring; a load's workers each read grid after grid, and
// their rings were 730 MB of garbage in a province's load. Other
// geometries are refused as Polygonal refuses them, and so are Z and M
// coordinates, SRIDs and WKB cut short.
func PolygonsFromWKB(wkb []byte, mp orb.MultiPolygon) (orb.MultiPolygon, error) {
	mp = mp[:0]
	r := wkbReader{b: wkb}
	t, err := r.header()
	if err != nil {
		return mp, err
	}
	n := 1
	switch t {
	case 3:
	case 6:
		if n, err = r.count(); err != nil {
			return mp, err
		}
	default:
		return mp, notPolygonal(geoJSONTypes[t])
	}
	for k := range n {
		if t == 6 {
			pt, err := r.header()
			if err != nil {
				return mp, err
			}
			if pt != 3 {
				return mp, fmt.Errorf("wkb: a MultiPolygon holds a %s", geoJSONTypes[pt])
			}
		}
		mp = slices.Grow(mp, 1)[:k+1] // the polygon read here last time, when there was one
		if mp[k], err = r.polygon(mp[k][:0]); err != nil {
			return mp[:0], err
		}
	}
	if r.i != len(r.b) {
		return mp[:0], errors.New("wkb: bytes left after the geometry")
	}
	return mp, nil
}

// polygon reads a polygon's rings into p's arrays.
func (r *wkbReader) polygon(p orb.Polygon) (orb.Polygon, error) {
	n, err := r.count()
	if err != nil {
		return p, err
	}
	for j := range n {
		p = slices.Grow(p, 1)[:j+1] // the ring read here last time, when there was one
		m, err := r.count()
		if err != nil {
			return p, err
		}
		if r.i+16*m > len(r.b) {
			return p, errShortWKB
		}
		ring := slices.Grow(p[j][:0], m)[:m]
		for i := range ring {
			ring[i] = orb.Point{math.Float64frombits(r.order.Uint64(r.b[r.i:])), math.Float64frombits(r.order.Uint64(r.b[r.i+8:]))}
			r.i += 16
		}
		p[j] = ring
	}
	return p, nil
}

// Package tiles addresses vector tiles (z/x/y in EPSG:3857), describes
// tilesets as TileJSON, and holds the per-zoom generalisation rules and the
// cache that an edit invalidates tile by tile.
package tiles

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
)

// Tile is one tile of the XYZ scheme: x from the antimeridian eastwards, y
// from the north.
type Tile struct{ Z, X, Y int }

func (t Tile) String() string { return fmt.Sprintf("%d/%d/%d", t.Z, t.X, t.Y) }

// ParseTile reads z, x and y as they appear in a tile URL (y may carry the
// ".mvt" suffix). Returns EINVALID saying what is out of range.
func ParseTile(z, x, y string) (Tile, error) {
	y = strings.TrimSuffix(y, ".mvt")
	var t Tile
	var err error
	if t.Z, err = tileNumber("z", z, gridmap.MaxZoom); err != nil {
		return t, err
	}
	n := 1<<t.Z - 1
	if t.X, err = tileNumber("x", x, n); err != nil {
		return t, err
	}
	if t.Y, err = tileNumber("y", y, n); err != nil {
		return t, err
	}
	return t, nil
}

func tileNumber(name, s string, max int) (int, error) {
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 || v > max || s == "" || s[0] == '+' || (len(s) > 1 && s[0] == '0') {
		return 0, gridmap.Errorf(gridmap.EINVALID, "tile %s %q must be a whole number from 0 to %d", name, s, max)
	}
	return v, nil
}

// Bound returns the tile's extent in EPSG:3857 metres: minX, minY, maxX, maxY.
func (t Tile) Bound() [4]float64 {
	size := 2 * geo.MercatorHalfWorld / float64(int(1)<<t.Z)
	minX := -geo.MercatorHalfWorld + float64(t.X)*size
	maxY := geo.MercatorHalfWorld - float64(t.Y)*size
	return [4]float64{minX, maxY - size, minX + size, maxY}
}

// Covering returns the range of tiles at zoom z (x0..x1, y0..y1, inclusive)
// that a lon/lat box touches, widened by margin (a fraction of a tile) so
// that tiles drawing the box within their buffer count too.
func Covering(z int, bbox [4]float64, margin float64) (x0, y0, x1, y1 int) {
	n := float64(int(1) << z)
	lo := geo.ToWebMercator([2]float64{bbox[0], bbox[1]})
	hi := geo.ToWebMercator([2]float64{bbox[2], bbox[3]})
	toTile := func(v float64) float64 { return (v + geo.MercatorHalfWorld) / (2 * geo.MercatorHalfWorld) * n }
	clamp := func(v float64) int { return int(math.Max(0, math.Min(n-1, math.Floor(v)))) }
	x0, x1 = clamp(toTile(lo[0])-margin), clamp(toTile(hi[0])+margin)
	// y grows southwards.
	y0, y1 = clamp(n-toTile(hi[1])-margin), clamp(n-toTile(lo[1])+margin)
	return x0, y0, x1, y1
}

// Extent is the tile coordinate space of encoded geometry, and Buffer how
// far past the tile edge geometry is kept (in the same units) so that lines
// along tile edges draw without seams.
const (
	Extent = 4096
	Buffer = 64
)

// BandZooms are the zooms gridmap keeps generalised copies of every grid
// for; a tile at zoom z draws from the first band at or above z, and from
// the grids themselves from RawZoom on.
var BandZooms = []int{5, 7, 9, 11, 13}

// RawZoom is the first zoom drawn from the grids' own geometry.
const RawZoom = 14

// BandFor returns the band index a tile at zoom z draws from, or -1 for the
// grids' own geometry.
func BandFor(z int) int {
	for i, bz := range BandZooms {
		if z <= bz {
			return i
		}
	}
	return -1
}

// Tolerance is the simplification tolerance of band b in Web Mercator
// metres: half a pixel of a 256-pixel tile at the band's zoom, a quarter at
// the zoom below. Vertices move less than a pixel on screen, and shared
// edges stay shared (see geo.Generaliser).
func Tolerance(b int) float64 {
	return 0.5 * 2 * geo.MercatorHalfWorld / 256 / float64(int(1)<<BandZooms[b])
}

// Package geo is pure geometry on orb types: reading GeoJSON features,
// validation and repair (with GEOS through go-geos), areas in square metres,
// and the subdivision used by the demo district.
package geo

import (
	"fmt"
	"math"
	"regexp"
	"strconv"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkb"
	orbgeo "github.com/paulmach/orb/geo"
	"github.com/twpayne/go-geos"
)

// Polygonal returns g as a MultiPolygon. A Polygon becomes a one-part
// MultiPolygon; anything else is an error saying what was found.
func Polygonal(g orb.Geometry) (orb.MultiPolygon, error) {
	switch g := g.(type) {
	case orb.Polygon:
		return orb.MultiPolygon{g}, nil
	case orb.MultiPolygon:
		return g, nil
	case nil:
		return nil, fmt.Errorf("geometry is missing; a grid needs a Polygon or MultiPolygon")
	default:
		return nil, notPolygonal(g.GeoJSONType())
	}
}

// notPolygonal refuses a geometry of a kind (its GeoJSON type) for a grid.
func notPolygonal(kind string) error {
	return fmt.Errorf("geometry is a %s; a grid needs a Polygon or MultiPolygon", kind)
}

// Invalid describes why a geometry is not valid and, when known, where.
type Invalid struct {
	Reason string
	Where  *orb.Point
}

func (iv *Invalid) Error() string { return iv.Reason }

// Checker validates and repairs polygons with GEOS. It holds a GEOS context
// and is not safe for concurrent use; make one per goroutine.
type Checker struct {
	ctx *geos.Context
}

// NewChecker returns a Checker with its own GEOS context.
func NewChecker() *Checker { return &Checker{ctx: geos.NewContext()} }

// Check returns nil for a valid, non-empty polygonal geometry with
// coordinates in range, or an *Invalid saying what is wrong and where.
// Rings must be closed and have at least four points; self-intersections,
// touching rings that split the interior and holes outside their shell are invalid
// (the OGC rules, as PostGIS applies them).
func (c *Checker) Check(mp orb.MultiPolygon) *Invalid {
	if iv := checkStructure(mp); iv != nil {
		return iv
	}
	g, err := c.toGEOS(mp)
	if err != nil {
		return &Invalid{Reason: err.Error()}
	}
	if g.IsValid() {
		return nil
	}
	return parseValidReason(g.IsValidReason())
}

// checkStructure catches what GEOS would refuse to build or silently accept:
// non-finite or out-of-range coordinates, short or unclosed rings, emptiness.
func checkStructure(mp orb.MultiPolygon) *Invalid {
	if len(mp) == 0 {
		return &Invalid{Reason: "geometry is empty"}
	}
	for pi, poly := range mp {
		if len(poly) == 0 {
			return &Invalid{Reason: fmt.Sprintf("polygon %d has no rings", pi)}
		}
		for ri, ring := range poly {
			for _, p := range ring {
				if math.IsNaN(p[0]) || math.IsNaN(p[1]) || math.IsInf(p[0], 0) || math.IsInf(p[1], 0) {
					return &Invalid{Reason: fmt.Sprintf("polygon %d ring %d has a coordinate that is not a number", pi, ri)}
				}
				if p[0] < -180 || p[0] > 180 || p[1] < -90 || p[1] > 90 {
					pt := p
					return &Invalid{Reason: fmt.Sprintf("coordinate [%g, %g] is out of range: longitude must be within -180..180 and latitude within -90..90 (EPSG:4326, longitude first)", p[0], p[1]), Where: &pt}
				}
			}
			if len(ring) < 4 {
				return &Invalid{Reason: fmt.Sprintf("polygon %d ring %d has %d points; a ring needs at least 4 (the first repeated at the end)", pi, ri, len(ring))}
			}
			if ring[0] != ring[len(ring)-1] {
				pt := ring[0]
				return &Invalid{Reason: fmt.Sprintf("polygon %d ring %d is not closed: its last point must repeat its first", pi, ri), Where: &pt}
			}
		}
	}
	return nil
}

var reasonWhere = regexp.MustCompile(`^(.*?)\s*\[\s*(-?[0-9.eE+-]+)\s+(-?[0-9.eE+-]+)\s*\]\s*$`)

// parseValidReason splits GEOS's "Self-intersection[x y]" into a reason and a point.
func parseValidReason(s string) *Invalid {
	m := reasonWhere.FindStringSubmatch(s)
	if m == nil {
		return &Invalid{Reason: s}
	}
	x, err1 := strconv.ParseFloat(m[2], 64)
	y, err2 := strconv.ParseFloat(m[3], 64)
	if err1 != nil || err2 != nil {
		return &Invalid{Reason: s}
	}
	pt := orb.Point{x, y}
	return &Invalid{Reason: fmt.Sprintf("%s at [%g, %g]", m[1], x, y), Where: &pt}
}

// Repair makes an invalid geometry valid with GEOS MakeValid (the structure
// method: rings are kept as areas, collapsed parts dropped) and keeps only its
// polygonal parts. Returns an *Invalid when nothing polygonal is left or the
// structure cannot be repaired (unclosed rings, bad coordinates).
func (c *Checker) Repair(mp orb.MultiPolygon) (orb.MultiPolygon, error) {
	if iv := checkStructure(mp); iv != nil {
		return nil, iv
	}
	return c.repair(mp)
}

// repair is Repair for any planar coordinates (no lon/lat range check).
func (c *Checker) repair(mp orb.MultiPolygon) (orb.MultiPolygon, error) {
	g, err := c.toGEOS(mp)
	if err != nil {
		return nil, &Invalid{Reason: err.Error()}
	}
	fixed := g.MakeValidWithParams(geos.MakeValidStructure, geos.MakeValidDiscardCollapsed)
	out, err := polygonalParts(fixed)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, &Invalid{Reason: "geometry collapses to nothing when repaired"}
	}
	return out, nil
}

func (c *Checker) toGEOS(g orb.Geometry) (*geos.Geom, error) {
	b, err := wkb.Marshal(g)
	if err != nil {
		return nil, err
	}
	return c.ctx.NewGeomFromWKB(b)
}

// polygonalParts returns the polygonal parts of g as a MultiPolygon.
func polygonalParts(g *geos.Geom) (orb.MultiPolygon, error) {
	if g == nil || g.IsEmpty() {
		return nil, nil
	}
	switch g.TypeID() {
	case geos.TypeIDPolygon, geos.TypeIDMultiPolygon:
		o, err := wkb.Unmarshal(g.ToWKB())
		if err != nil {
			return nil, err
		}
		return Polygonal(o)
	case geos.TypeIDGeometryCollection:
		var out orb.MultiPolygon
		for i := range g.NumGeometries() {
			part, err := polygonalParts(g.Geometry(i))
			if err != nil {
				return nil, err
			}
			out = append(out, part...)
		}
		return out, nil
	default:
		return nil, nil
	}
}

// AreaM2 is the area of a lon/lat geometry in square metres on the sphere
// (within about 0.5% of the ellipsoidal area at mid latitudes).
func AreaM2(g orb.Geometry) float64 { return math.Abs(orbgeo.Area(g)) }

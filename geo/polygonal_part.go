package geo

import (
	"fmt"
	"sort"
	"strings"

	"github.com/paulmach/orb"
)

// PolygonalPart returns the polygons of a GeometryCollection as one
// MultiPolygon (the part ST_CollectionExtract(g, 3) keeps) and says what
// it leaves out, such as "1 LineString, 2 Points". For a collection with
// no polygon, or any other geometry, it returns nil and "": Polygonal then
// says what is wrong. The polygons may overlap one another; Checker.Repair
// unions them.
func PolygonalPart(g orb.Geometry) (orb.MultiPolygon, string) {
	c, ok := g.(orb.Collection)
	if !ok {
		return nil, ""
	}
	var mp orb.MultiPolygon
	dropped := map[string]int{}
	var walk func(orb.Collection)
	walk = func(c orb.Collection) {
		for _, part := range c {
			switch p := part.(type) {
			case orb.Polygon:
				mp = append(mp, p)
			case orb.MultiPolygon:
				mp = append(mp, p...)
			case orb.Collection:
				walk(p)
			case nil:
			default:
				dropped[p.GeoJSONType()]++
			}
		}
	}
	walk(c)
	if len(mp) == 0 {
		return nil, ""
	}
	kinds := make([]string, 0, len(dropped))
	for k, n := range dropped {
		if n > 1 {
			k += "s"
		}
		kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(kinds)
	return mp, strings.Join(kinds, ", ")
}

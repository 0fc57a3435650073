package server

import (
	"math"
	"strconv"
	"unsafe"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
)

// Lookups are the hottest path: a batch of 100,000 points answers in a few
// tens of megabytes of JSON, so answers are appended by hand rather than
// through encoding/json's reflection (about ten times faster here). The
// shape is API.md's; TestLookupJSONMatchesEncodingJSON holds the two
// encodings to the same output.

// AppendLookupJSON appends one answer as GET /v1/lookup writes it. orig is
// the point as given and crs its system; for a system other than WGS84 the
// converted point follows as "wgs84".
func AppendLookupJSON(b []byte, a *gridmap.LookupAnswer, origLon, origLat float64, crs string) []byte {
	b = append(b, `{"lon":`...)
	b = appendFloat(b, origLon)
	b = append(b, `,"lat":`...)
	b = appendFloat(b, origLat)
	if crs != "" && crs != gridmap.CRSWGS84 {
		b = append(b, `,"crs":`...)
		b = appendString(b, crs)
		b = append(b, `,"wgs84":[`...)
		b = appendFloat(b, a.Lon)
		b = append(b, ',')
		b = appendFloat(b, a.Lat)
		b = append(b, ']')
	}
	b = append(b, `,"layers":{`...)
	for i := range a.Layers {
		l := &a.Layers[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, l.Layer)
		b = append(b, `:{"chain":[`...)
		for j := range l.Chain {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendRef(b, &l.Chain[j])
			b = append(b, '}')
		}
		b = append(b, `],"people":[`...)
		for j := range l.People {
			p := &l.People[j]
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"role":`...)
			b = appendString(b, p.Role)
			b = append(b, `,"name":`...)
			b = appendString(b, p.Name)
			if p.Phone != "" {
				b = append(b, `,"phone":`...)
				b = appendString(b, p.Phone)
			}
			if p.Department != "" {
				b = append(b, `,"department":`...)
				b = appendString(b, p.Department)
			}
			b = append(b, '}')
		}
		b = append(b, `],"co_owners":[`...)
		for j := range l.CoOwners {
			c := &l.CoOwners[j]
			if j > 0 {
				b = append(b, ',')
			}
			b = appendRef(b, &c.GridRef)
			b = append(b, `,"distance_m":`...)
			b = appendFloat(b, c.DistanceM)
			b = append(b, `,"reason":`...)
			b = appendString(b, c.Reason)
			b = append(b, '}')
		}
		b = append(b, ']')
		if l.Nearest != nil {
			b = append(b, `,"nearest":`...)
			b = appendRef(b, &l.Nearest.GridRef)
			b = append(b, `,"distance_m":`...)
			b = appendFloat(b, l.Nearest.DistanceM)
			b = append(b, '}')
		}
		b = append(b, `,"data_version":`...)
		b = strconv.AppendInt(b, l.DataVersion, 10)
		b = append(b, '}')
	}
	return append(b, "}}"...)
}

// appendRef appends a grid reference as an unclosed object.
func appendRef(b []byte, g *gridmap.GridRef) []byte {
	b = append(b, `{"code":`...)
	b = appendString(b, g.Code)
	b = append(b, `,"name":`...)
	b = appendString(b, g.Name)
	b = append(b, `,"level":`...)
	b = appendString(b, g.Level)
	b = append(b, `,"version":`...)
	return strconv.AppendInt(b, int64(g.Version), 10)
}

func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

// appendString appends s as a JSON string (geo.AppendJSONString).
func appendString(b []byte, s string) []byte { return geo.AppendJSONString(b, s) }

// bytesString views b as a string without copying, for parsing numbers;
// the string must not outlive b.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

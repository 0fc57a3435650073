package server

import (
	"encoding/json"
	"maps"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/paulmach/orb/geojson"
)

// gridFeature is a grid as a GeoJSON Feature: id is the code; properties
// carry code, name, level, parent, version and validity, then the grid's
// free attributes (which never override those).
type gridFeature struct {
	Type       string            `json:"type"`
	ID         string            `json:"id"`
	Geometry   *geojson.Geometry `json:"geometry"`
	Properties map[string]any    `json:"properties"`
}

func toFeature(g *gridmap.Grid) gridFeature {
	props := make(map[string]any, len(g.Attributes)+8)
	maps.Copy(props, g.Attributes)
	var parent any
	if g.Parent != "" {
		parent = g.Parent
	}
	var validTo any
	if g.ValidTo != nil {
		validTo = g.ValidTo.UTC().Format(time.RFC3339Nano)
	}
	props["layer"] = g.Layer
	props["code"] = g.Code
	props["name"] = g.Name
	props["level"] = g.Level
	props["parent"] = parent
	props["version"] = g.Version
	props["valid_from"] = g.ValidFrom.UTC().Format(time.RFC3339Nano)
	props["valid_to"] = validTo
	if g.People != nil {
		props["people"] = g.People
	}
	return gridFeature{Type: "Feature", ID: g.Code, Geometry: geojson.NewGeometry(g.Geometry), Properties: props}
}

// featureCollection is a page of grids.
type featureCollection struct {
	Type           string        `json:"type"`
	Features       []gridFeature `json:"features"`
	NumberReturned int           `json:"numberReturned"`
	Next           *string       `json:"next"`
}

func marshalFeature(g *gridmap.Grid) ([]byte, error) { return json.Marshal(toFeature(g)) }

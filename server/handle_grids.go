package server

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gridmap/gridmap"
	"github.com/labstack/echo/v4"
	"github.com/paulmach/orb"
)

// DefaultPageSize is how many grids a page holds when the client does not say.
const DefaultPageSize = 100

// handleGrids lists current grids of a layer as a GeoJSON FeatureCollection:
// GET /v1/layers/{layer}/grids?bbox=&level=&parent=&limit=&cursor=.
// While more remain, "next" holds the cursor of the next page.
func (s *Server) handleGrids(c echo.Context) error {
	if draft, err := boolParam(c, "draft"); err != nil {
		return err
	} else if draft {
		return s.asDraftRoute(c, "GET", "/v1/layers/:layer/draft/grids", s.handleDraftGrids)
	}
	f := gridmap.GridFilter{Layer: c.Param("layer"), Level: c.QueryParam("level"), Parent: c.QueryParam("parent"), Limit: DefaultPageSize}
	var err error
	if v := c.QueryParam("bbox"); v != "" {
		if f.BBox, err = parseBBox(v); err != nil {
			return err
		}
	}
	if v := c.QueryParam("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 {
			return gridmap.Errorf(gridmap.EINVALID, "limit %q must be a positive whole number", v)
		}
	}
	if v := c.QueryParam("cursor"); v != "" {
		code, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || gridmap.CheckText("cursor", string(code)) != nil {
			return gridmap.Errorf(gridmap.EINVALID, "cursor %q is not one this service gave out; pass the \"next\" value of the previous page", v)
		}
		f.Cursor = string(code)
	}
	grids, next, err := s.deps.Grids.FindGrids(c.Request().Context(), f)
	if err != nil {
		return err
	}
	fc := featureCollection{Type: "FeatureCollection", Features: make([]gridFeature, len(grids)), NumberReturned: len(grids)}
	for i, g := range grids {
		fc.Features[i] = toFeature(g)
	}
	if next != "" {
		cursor := base64.RawURLEncoding.EncodeToString([]byte(next))
		fc.Next = &cursor
	}
	c.Response().Header().Set(echo.HeaderContentType, "application/geo+json")
	return c.JSON(http.StatusOK, fc)
}

// handleGrid returns the current version of one grid with its people:
// GET /v1/layers/{layer}/grids/{code}. The ETag is the version.
// With ?at=RFC3339 it returns the version valid at that time.
func (s *Server) handleGrid(c echo.Context) error {
	var g *gridmap.Grid
	var err error
	if at := c.QueryParam("at"); at != "" {
		t, perr := parseTime("at", at)
		if perr != nil {
			return perr
		}
		g, err = s.deps.Editor.GridAt(c.Request().Context(), c.Param("layer"), c.Param("code"), t)
	} else {
		g, err = s.deps.Grids.Grid(c.Request().Context(), c.Param("layer"), c.Param("code"))
	}
	if err != nil {
		return err
	}
	if callerOf(c).Kind == gridmap.CallerAnonymous {
		g.People = nil // names and phone numbers are not for anonymous callers
	}
	etag := fmt.Sprintf(`"%d"`, g.Version)
	c.Response().Header().Set("ETag", etag)
	if c.Request().Header.Get("If-None-Match") == etag {
		return c.NoContent(http.StatusNotModified)
	}
	b, err := marshalFeature(g)
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "application/geo+json", b)
}

// handlePutPeople replaces the people responsible for a grid:
// PUT /v1/layers/{layer}/grids/{code}/people with {"people": [...]}.
func (s *Server) handlePutPeople(c echo.Context) error {
	var body struct {
		People []gridmap.Person `json:"people"`
	}
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	if body.People == nil {
		return gridmap.Errorf(gridmap.EINVALID, `body needs "people": a list of {"role", "name", "phone", "department"} (an empty list removes everyone)`)
	}
	layer, code := c.Param("layer"), c.Param("code")
	if err := s.deps.Grids.SetPeople(c.Request().Context(), layer, code, body.People); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, body)
}

// parseBBox reads "minLon,minLat,maxLon,maxLat" in EPSG:4326.
func parseBBox(v string) (*orb.Bound, error) {
	parts := strings.Split(v, ",")
	if len(parts) != 4 {
		return nil, gridmap.Errorf(gridmap.EINVALID, "bbox %q must be four numbers: minLon,minLat,maxLon,maxLat", v)
	}
	var n [4]float64
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || f != f {
			return nil, gridmap.Errorf(gridmap.EINVALID, "bbox %q: %q is not a number", v, p)
		}
		n[i] = f
	}
	switch {
	case n[0] < -180 || n[2] > 180 || n[1] < -90 || n[3] > 90:
		return nil, gridmap.Errorf(gridmap.EINVALID, "bbox %q is out of range: longitudes within -180..180, latitudes within -90..90", v)
	case n[0] > n[2] || n[1] > n[3]:
		return nil, gridmap.Errorf(gridmap.EINVALID, "bbox %q must list the minimum corner first: minLon,minLat,maxLon,maxLat", v)
	}
	return &orb.Bound{Min: orb.Point{n[0], n[1]}, Max: orb.Point{n[2], n[3]}}, nil
}

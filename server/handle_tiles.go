package server

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/tiles"
	"github.com/labstack/echo/v4"
)

// MVTContentType is the media type of Mapbox Vector Tiles.
const MVTContentType = "application/vnd.mapbox-vector-tile"

func (s *Server) tileRoutes() {
	if s.deps.Tiles == nil {
		return
	}
	s.echo.GET("/tiles/:tileset/:z/:x/:y", s.handleTile)
	s.echo.GET("/tiles/:tilejson", s.handleTileJSON)
	s.metrics.registry.MustRegister(s.deps.Tiles.Collectors()...)
}

// tileQuery reads a tileset name and the report filters (status, category,
// since, until) of a tile or TileJSON request.
func tileQuery(c echo.Context, tileset string) (gridmap.TileQuery, error) {
	q := gridmap.TileQuery{Tileset: tileset, Status: c.QueryParam("status"), Category: c.QueryParam("category")}
	for _, p := range []struct {
		name string
		to   *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if v := c.QueryParam(p.name); v != "" {
			t, err := parseTime(p.name, v)
			if err != nil {
				return q, err
			}
			*p.to = t
		}
	}
	if !gridmap.ReportTileset(q.Tileset) {
		if q.Filter() != "" {
			return q, gridmap.Errorf(gridmap.EINVALID, "status, category, since and until filter the %q and %q tilesets only; layer tilesets take no filters",
				gridmap.ReportsTileset, gridmap.HotspotsTileset)
		}
		return q, nil
	}
	// Reports are not map data: open reads do not reach them, and a
	// scoped caller sees its jurisdiction's only.
	caller := callerOf(c)
	if caller.Kind == gridmap.CallerAnonymous {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="gridmap"`)
		return q, gridmap.Errorf(gridmap.EUNAUTHORIZED, "the %q tileset needs a signed-in caller or a token", q.Tileset)
	}
	q.Scope = caller.ScopeOf()
	return q, q.CheckReportFilter()
}

// handleTile serves one vector tile:
// GET /tiles/{tileset}/{z}/{x}/{y}.mvt[?status=&category=&since=&until=].
// Tiles are cached gzip-compressed and sent as they are to clients that
// accept gzip; the ETag names the version of the tile's area, so a
// revalidation after an edit elsewhere is answered 304.
func (s *Server) handleTile(c echo.Context) error {
	y := c.Param("y")
	if !strings.HasSuffix(y, ".mvt") {
		return gridmap.Errorf(gridmap.ENOTFOUND, "tiles are served as /tiles/{tileset}/{z}/{x}/{y}.mvt")
	}
	t, err := tiles.ParseTile(c.Param("z"), c.Param("x"), y)
	if err != nil {
		return err
	}
	q, err := tileQuery(c, c.Param("tileset"))
	if err != nil {
		return err
	}
	q.Z, q.X, q.Y = t.Z, t.X, t.Y
	e, outcome, err := s.deps.Tiles.Tile(c.Request().Context(), q)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, MVTContentType)
	h.Set("ETag", e.ETag)
	// Boundaries and reports change while a dispatcher watches: the browser
	// keeps the tile but asks again each time, and an unchanged tile costs
	// a 304.
	h.Set("Cache-Control", "no-cache")
	if gridmap.ReportTileset(q.Tileset) {
		// Reports differ by caller: no shared cache may keep them.
		h.Set("Cache-Control", "private, no-cache")
	}
	h.Set(echo.HeaderVary, echo.HeaderAcceptEncoding)
	h.Set("X-Tile-Cache", outcome)
	if etagMatches(c.Request().Header.Get("If-None-Match"), e.ETag) {
		s.deps.Tiles.Count(q, "not_modified", len(e.Gzip))
		return c.NoContent(http.StatusNotModified)
	}
	s.deps.Tiles.Count(q, outcome, len(e.Gzip))
	if acceptsGzip(c.Request().Header.Get(echo.HeaderAcceptEncoding)) {
		h.Set(echo.HeaderContentEncoding, "gzip")
		h.Set(echo.HeaderContentLength, strconv.Itoa(len(e.Gzip)))
		return c.Blob(http.StatusOK, MVTContentType, e.Gzip)
	}
	zr, err := gzip.NewReader(bytes.NewReader(e.Gzip))
	if err != nil {
		return err
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, MVTContentType, raw)
}

// etagMatches applies If-None-Match: a list of entity tags or "*"; weak
// tags compare by their opaque part.
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == "*" || tag == etag {
			return true
		}
	}
	return false
}

// acceptsGzip reads Accept-Encoding: gzip (or *) unless refused with q=0.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(part, ";")
		if name = strings.TrimSpace(name); !strings.EqualFold(name, "gzip") && name != "*" {
			continue
		}
		q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q=")
		weight, err := strconv.ParseFloat(q, 64)
		return !ok || err != nil || weight > 0
	}
	return false
}

// tileJSON is TileJSON 3.0.0.
type tileJSON struct {
	TileJSON     string                `json:"tilejson"`
	Name         string                `json:"name"`
	Description  string                `json:"description,omitempty"`
	Version      string                `json:"version"`
	Scheme       string                `json:"scheme"`
	Tiles        []string              `json:"tiles"`
	MinZoom      int                   `json:"minzoom"`
	MaxZoom      int                   `json:"maxzoom"`
	Bounds       [4]float64            `json:"bounds"`
	Center       [3]float64            `json:"center"`
	VectorLayers []gridmap.VectorLayer `json:"vector_layers"`
}

// handleTileJSON describes a tileset: GET /tiles/{tileset}.json. The tile
// URL carries the request's report filters along.
func (s *Server) handleTileJSON(c echo.Context) error {
	name, ok := strings.CutSuffix(c.Param("tilejson"), ".json")
	if !ok {
		return gridmap.Errorf(gridmap.ENOTFOUND, "a tileset is described at /tiles/{tileset}.json")
	}
	q, err := tileQuery(c, name)
	if err != nil {
		return err
	}
	ts, err := s.deps.Tiles.Tileset(c.Request().Context(), name)
	if err != nil {
		return err
	}
	u := baseURL(c) + "/tiles/" + url.PathEscape(name) + "/{z}/{x}/{y}.mvt"
	if f := q.Filter(); f != "" {
		u += "?" + f
	}
	b := ts.Bounds
	center := [3]float64{(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, float64(min(max(ts.MinZoom, 10), ts.MaxZoom))}
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.JSON(http.StatusOK, tileJSON{TileJSON: "3.0.0", Name: ts.Name, Description: ts.Description, Version: "1.0.0",
		Scheme: "xyz", Tiles: []string{u}, MinZoom: ts.MinZoom, MaxZoom: ts.MaxZoom, Bounds: b, Center: center,
		VectorLayers: ts.VectorLayers})
}

// baseURL is the scheme and host the client used, behind a proxy as the
// proxy says (X-Forwarded-Proto).
func baseURL(c echo.Context) string {
	return c.Scheme() + "://" + c.Request().Host
}

package server

import (
	"net/http"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/labstack/echo/v4"
)

// handleExport streams a layer's current grids (or its draft's, with
// draft=true) as a GeoJSON FeatureCollection file: GET
// /v1/layers/{layer}/export?format=geojson. Scoped callers get the grids
// inside their scope. 400 for another format.
func (s *Server) handleExport(c echo.Context) error {
	if f := valueOr(c.QueryParam("format"), "geojson"); f != "geojson" {
		return gridmap.Errorf(gridmap.EINVALID, "format=%q: the export format is geojson", f)
	}
	draft, err := boolParam(c, "draft")
	if err != nil {
		return err
	}
	if draft {
		// The draft is read as its own routes are: by editors of the whole layer.
		if err := s.mayUseDraft(c, http.MethodGet, "/v1/layers/:layer/draft/grids"); err != nil {
			return err
		}
	}
	layer := c.Param("layer")
	name := layer + ".geojson"
	if draft {
		name = layer + "-draft.geojson"
	}
	// A whole layer to a slow client may take longer than an answer may.
	_ = http.NewResponseController(c.Response().Writer).SetWriteDeadline(time.Now().Add(importReadTimeout))
	return s.streamGrids(c, layer, draft, name)
}

// streamGrids writes the grids as a FeatureCollection while the database
// sends them, as an attachment named attachment unless it is "". An error
// before the first grid is answered as usual; after it, the body is cut
// short (the client sees invalid JSON) and the error is logged.
func (s *Server) streamGrids(c echo.Context, layer string, draft bool, attachment string) error {
	if attachment != "" {
		c.Response().Header().Set(echo.HeaderContentDisposition, `attachment; filename="`+attachment+`"`)
	}
	out := s.newFeatureStream(c)
	err := s.deps.Drafts.ExportGrids(c.Request().Context(), layer, draft, out.add)
	return out.end(err, "export", "layer", layer, "draft", draft)
}

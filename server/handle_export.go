package server

import (
	"bufio"
	"net/http"

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
	layer := c.Param("layer")
	name := layer + ".geojson"
	if draft {
		name = layer + "-draft.geojson"
	}
	return s.streamGrids(c, layer, draft, name)
}

// streamGrids writes the grids as a FeatureCollection while the database
// sends them, as an attachment named attachment unless it is "". An error
// before the first grid is answered as usual; after it, the body is cut
// short (the client sees invalid JSON) and the error is logged.
func (s *Server) streamGrids(c echo.Context, layer string, draft bool, attachment string) error {
	res := c.Response()
	w := bufio.NewWriterSize(res, 64<<10)
	started, n := false, 0
	start := func() {
		res.Header().Set(echo.HeaderContentType, "application/geo+json")
		if attachment != "" {
			res.Header().Set(echo.HeaderContentDisposition, `attachment; filename="`+attachment+`"`)
		}
		res.WriteHeader(http.StatusOK)
		_, _ = w.WriteString(`{"type":"FeatureCollection","features":[`)
		started = true
	}
	err := s.deps.Drafts.ExportGrids(c.Request().Context(), layer, draft, func(feature []byte) error {
		if !started {
			start()
		}
		if n > 0 {
			_ = w.WriteByte(',')
		}
		_ = w.WriteByte('\n')
		n++
		_, err := w.Write(feature)
		return err
	})
	if err != nil && !started {
		return err
	}
	if err != nil {
		_ = w.Flush()
		s.logger.Warn("export cut short", "layer", layer, "draft", draft, "features", n, "err", err,
			"request_id", res.Header().Get(echo.HeaderXRequestID))
		return err
	}
	if !started {
		start()
	}
	_, _ = w.WriteString("\n]}\n")
	return w.Flush()
}

package server

import (
	"bufio"
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
		if r, _ := s.ruleFor(http.MethodGet, "/v1/layers/:layer/draft/grids"); !callerOf(c).Can(r.role) || (r.global && callerOf(c).Scope != nil) {
			return gridmap.Errorf(gridmap.EFORBIDDEN, "export?draft=true reads the layer's draft, which only editors of the whole layer may")
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
		s.logger.Warn("export cut short", "layer", layer, "draft", draft, "features", n, "err", err,
			"request_id", res.Header().Get(echo.HeaderXRequestID))
		// Reset the connection: a body that ended normally would read as a
		// whole layer to the client.
		panic(http.ErrAbortHandler)
	}
	if !started {
		start()
	}
	_, _ = w.WriteString("\n]}\n")
	return w.Flush()
}
